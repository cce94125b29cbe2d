"""The retail product catalog: 8 products derived from 10 balances (seed 001).

A customer holds a product when any of its balances is non-zero. Holdings are kept as a
bitmask in catalog order (bit i = PRODUCTS[i]), which is what makes rule matching and
itemset counting cheap on both the batch and the stream side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, overload

import numpy as np
import numpy.typing as npt

# Catalog order is also the order itemsets are written in ("存款|国债|保险" sorts by it).
PRODUCT_BALANCES: dict[str, tuple[str, ...]] = {
    "存款": ("存款余额",),
    "保险": ("保险余额",),
    "基金和积利宝": ("基金余额", "积利宝余额"),
    "积存金": ("积存金余额",),
    "理财": ("理财余额",),
    "国债": ("国债余额",),
    "代销资管产品": ("高净值产品余额",),
    "贷款和信用卡": ("贷款余额", "信用卡分期余额"),
}
PRODUCTS: tuple[str, ...] = tuple(PRODUCT_BALANCES)
# What the customer owns with the bank, for the churn measure (金融资产): every product but
# the liabilities (loans and card instalments).
FINANCIAL_ASSETS: tuple[str, ...] = tuple(p for p in PRODUCTS if p != "贷款和信用卡")

# Seed 001's corporate churn file without its id, dates and labels: the churn model's
# inputs. A snapshot row may carry them; the stream keeps them for the model's probability.
CORPORATE_FIELDS: tuple[str, ...] = (
    "行业",
    "成立年限",
    "注册资本",
    "员工人数",
    "存款月日均",
    "贷款余额",
    "产品持有数",
    "近一年交易天数",
)
CORPORATE_TEXT_FIELDS = frozenset({"行业"})
# The one input the stream knows better than the snapshot: the catalog products held now.
PRODUCTS_HELD_FIELD = "产品持有数"
BALANCE_COLUMNS: tuple[str, ...] = (
    "存款余额",
    "保险余额",
    "理财余额",
    "基金余额",
    "积利宝余额",
    "积存金余额",
    "国债余额",
    "高净值产品余额",
    "贷款余额",
    "信用卡分期余额",
)
PRODUCT_BIT: dict[str, int] = {name: 1 << i for i, name in enumerate(PRODUCTS)}
ALL_PRODUCTS_MASK = (1 << len(PRODUCTS)) - 1


def products_to_mask(products: Iterable[str]) -> int:
    """The mask of a set of product names.

    >>> products_to_mask(["国债", "存款"])
    33
    """
    mask = 0
    for name in products:
        try:
            mask |= PRODUCT_BIT[name]
        except KeyError:
            msg = f"unknown product {name!r}; expected one of {list(PRODUCTS)}"
            raise KeyError(msg) from None
    return mask


def mask_to_products(mask: int) -> tuple[str, ...]:
    """The products of a mask, in catalog order.

    >>> mask_to_products(33)
    ('存款', '国债')
    """
    return tuple(name for i, name in enumerate(PRODUCTS) if mask >> i & 1)


@overload
def holdings_from_balances(balances: Mapping[str, float]) -> int: ...
@overload
def holdings_from_balances(
    balances: Mapping[str, npt.NDArray[np.float64]],
) -> npt.NDArray[np.int64]: ...
def holdings_from_balances(balances: Mapping[str, Any]) -> Any:
    """Held products as a mask: a product is held when any of its balances is non-zero.

    Works on one customer's floats and, element-wise, on columns of many customers, so the
    batch and the stream share this one definition. A missing balance counts as zero.

    >>> holdings_from_balances({"存款余额": 10.0, "积利宝余额": 5.0})
    5
    """
    mask: Any = 0
    for i, columns in enumerate(PRODUCT_BALANCES.values()):
        held: Any = False
        for column in columns:
            held = held | (balances.get(column, 0.0) != 0)
        mask = mask | (held << i) if isinstance(held, bool) else mask | (held.astype(np.int64) << i)
    return mask
