"""A bank's product catalog: products derived from balance columns, as data.

A customer holds a product when any of its balances is non-zero. Holdings are kept as a
bitmask in catalog order (bit i = products[i]), which is what makes rule matching and
itemset counting cheap on both the batch and the stream side; a mask has 64 bits, so a
catalog has at most 64 products. The catalog comes from the schema file and travels in
the bundle (`rules_store/bundle/schema.py`); nothing on the runtime paths names a product.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from rules_store.errors import XsellError

MAX_PRODUCTS = 64  # holdings are one 64-bit mask

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


class CatalogError(XsellError, ValueError):
    """A catalog that cannot be used: too many products, a duplicate, no balances."""


@dataclass(frozen=True)
class Product:
    name: str
    balances: tuple[str, ...]  # held when any of these columns is non-zero
    financial_asset: bool  # counts toward the churn measure (金融资产)
    value: float = 1.0  # relative value weight: ranks offers of equal evidence


@dataclass(frozen=True)
class Catalog:
    """Products in catalog order; the order is also the order itemsets are written in."""

    products: tuple[Product, ...]
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    bits: Mapping[str, int] = field(init=False, repr=False, compare=False)
    all_mask: int = field(init=False, repr=False, compare=False)
    # Names of the products the churn test counts, in catalog order (asked per event).
    financial_assets: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(p.name for p in self.products)
        if not names:
            msg = "a catalog needs at least one product"
            raise CatalogError(msg)
        if len(names) > MAX_PRODUCTS:
            msg = (
                f"{len(names)} products; at most {MAX_PRODUCTS} are supported (holdings are "
                "a 64-bit mask): merge products that are sold together"
            )
            raise CatalogError(msg)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            msg = f"duplicate product(s) {duplicates}"
            raise CatalogError(msg)
        for product in self.products:
            if not product.balances:
                msg = f"product {product.name!r} has no balance columns"
                raise CatalogError(msg)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "bits", {name: 1 << i for i, name in enumerate(names)})
        object.__setattr__(self, "all_mask", (1 << len(names)) - 1)
        assets = tuple(p.name for p in self.products if p.financial_asset)
        object.__setattr__(self, "financial_assets", assets)

    @property
    def balance_columns(self) -> tuple[str, ...]:
        """Every balance column a product is derived from, in catalog order."""
        return tuple(dict.fromkeys(c for p in self.products for c in p.balances))

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(p.value for p in self.products)

    def mask(self, names: Iterable[str]) -> int:
        """The mask of a set of product names.

        >>> demo_catalog().mask(["fund", "deposit"])
        5
        """
        mask = 0
        for name in names:
            try:
                mask |= self.bits[name]
            except KeyError:
                msg = f"unknown product {name!r}; expected one of {list(self.names)}"
                raise KeyError(msg) from None
        return mask

    def products_of(self, mask: int) -> tuple[str, ...]:
        """The products of a mask, in catalog order.

        >>> demo_catalog().products_of(5)
        ('deposit', 'fund')
        """
        return tuple(name for i, name in enumerate(self.names) if mask >> i & 1)

    def held(self, balances: Mapping[str, float]) -> int:
        """Held products of a state's balances by product; products not in the catalog
        (dropped by a later catalog) are ignored.

        >>> demo_catalog().held({"fund": 3.0, "deposit": 0.0, "gold": 9.0})
        4
        """
        bits, mask = self.bits, 0
        for name, balance in balances.items():  # a customer's few balances, not the catalog
            if balance != 0:
                mask |= bits.get(name, 0)
        return mask

    def financial_total(self, balances: Mapping[str, float]) -> float:
        """The total the churn test follows: every financial asset, liabilities excluded."""
        return round(sum(map(balances.get, self.financial_assets, repeat(0.0))), 2)

    @overload
    def holdings_from_balances(self, balances: Mapping[str, float]) -> int: ...
    @overload
    def holdings_from_balances(
        self, balances: Mapping[str, npt.NDArray[np.float64]]
    ) -> npt.NDArray[np.int64]: ...
    def holdings_from_balances(self, balances: Mapping[str, Any]) -> Any:
        """Held products as a mask from balance columns: held when any is non-zero.

        Works on one customer's floats and, element-wise, on columns of many customers, so
        the batch and the stream share this one definition. A missing balance counts as
        zero. Column masks are int64: with 64 products bit 63 is the sign bit.

        >>> demo_catalog().holdings_from_balances({"deposit_bal": 10.0, "fund_bal": 5.0})
        5
        """
        mask: Any = 0
        for i, product in enumerate(self.products):
            held: Any = False
            for column in product.balances:
                held = held | (balances.get(column, 0.0) != 0)
            if isinstance(held, bool):
                mask |= held << i
            else:
                mask = mask | (held.astype(np.uint64) << np.uint64(i)).view(np.int64)
        return mask


def demo_catalog() -> Catalog:
    """A three-product catalog for examples and doctests."""
    return Catalog(
        (
            Product("deposit", ("deposit_bal",), financial_asset=True),
            Product("loan", ("loan_bal",), financial_asset=False),
            Product("fund", ("fund_bal",), financial_asset=True, value=2.0),
        )
    )
