"""Synthetic corporate customers (seed 001, 对公) with a planted, documented signal.

Profiles: 行业 (10 sectors), 成立年限 1-30, 注册资本 (log-normal around 5M), 员工人数
(log-normal around 30), 存款月日均 (grows with capital), 贷款余额 (40% borrow),
产品持有数 1-8.

**Churn** (`generate_churn`): each customer churns with probability sigmoid(z),

    z = 1.0 - 0.025 * 近一年交易天数 - 0.6 * (产品持有数 - 1)
        + 1.2 * [行业 in 批发和零售业, 住宿和餐饮业] - 1.0 * [贷款余额 > 0]

(about 12% churn). A churner's 金融资产月日均 is 5-45% of 近三个月金融资产月日均,
anyone else's 55-140%, so the label follows exactly from those two columns. 成立年限,
注册资本, 员工人数 and 存款月日均 carry no signal (存款月日均 is drawn before the drop:
it is last months' level, so it cannot give the label away). The dates are noise too.

**Potential** (`generate_potential`): potential with probability sigmoid(z),

    z = -2.4 + 1.8 * log10(注册资本 / 1e6) + 0.8 * (产品持有数 - 2)
        + 1.5 * [行业 in 制造业, 批发和零售业] - 1.5 * [行业 = 农林牧渔业]

(about 45%). A potential customer has 4-40 transactions a month (70%) or 0-3 worth
3M-50M; anyone else 0-3 worth under 3M. File 2 gives addresses: 30% registered in
广东省, the operating address in the same province 80% of the time; 广西 and 山东
addresses are there to catch a filter that matches too loosely. 2% of file 1's customers
have no row in file 2.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules_store.bundle.schema import ID_COLUMN
from training.corporate_data import CHURN_SCHEMA, POTENTIAL_SCHEMA, RELATED_SCHEMA

# The industries generated data uses; a bank's own files may use any others (learned).
INDUSTRIES = (
    "制造业",
    "批发和零售业",
    "建筑业",
    "信息技术服务业",
    "交通运输业",
    "房地产业",
    "住宿和餐饮业",
    "农林牧渔业",
    "租赁和商务服务业",
    "其他",
)

AS_OF = date(2026, 10, 31)
CHURN_PRONE = ("批发和零售业", "住宿和餐饮业")
ACTIVE = ("制造业", "批发和零售业")
PROVINCES = {
    "广东省": ("广州市天河区", "深圳市南山区", "佛山市顺德区", "东莞市南城区"),
    "广西壮族自治区": ("南宁市青秀区", "柳州市城中区"),
    "山东省": ("济南市历下区", "青岛市市南区"),
    "福建省": ("厦门市思明区", "福州市鼓楼区"),
    "湖南省": ("长沙市岳麓区",),
    "浙江省": ("杭州市西湖区", "宁波市鄞州区"),
    "江苏省": ("南京市鼓楼区", "苏州市工业园区"),
}
GUANGDONG_SHARE = 0.3
DIRTY_SHARE = 0.002


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _ids(rng: np.random.Generator, n: int) -> npt.NDArray[np.str_]:
    numbers = rng.choice(np.arange(10**11, 10**11 + 50 * max(n, 1)), size=n, replace=False)
    return np.char.add("9", numbers.astype(str))


def _profiles(rng: np.random.Generator, n: int) -> pd.DataFrame:
    capital = np.round(rng.lognormal(np.log(5e6), 1.2, n), -4) + 1e5
    return pd.DataFrame(
        {
            ID_COLUMN: _ids(rng, n),
            "行业": np.asarray(INDUSTRIES, dtype=object)[
                rng.choice(len(INDUSTRIES), n, p=_industry_shares())
            ],
            "成立年限": rng.integers(1, 31, n),
            "注册资本": capital,
            "员工人数": np.maximum(1, np.round(rng.lognormal(np.log(30), 1.2, n))).astype(int),
            "存款月日均": np.round(capital * rng.lognormal(np.log(0.2), 0.8, n), 2),
            "贷款余额": np.where(
                rng.random(n) < 0.4, np.round(rng.lognormal(np.log(3e6), 1.0, n), 2), 0.0
            ),
            "产品持有数": np.minimum(8, 1 + rng.poisson(1.5, n)),
        }
    )


def _industry_shares() -> npt.NDArray[np.float64]:
    shares = np.array([0.2, 0.18, 0.1, 0.1, 0.08, 0.06, 0.08, 0.06, 0.08, 0.06])
    return np.asarray(shares / shares.sum(), dtype=np.float64)


def _blank_some(
    rng: np.random.Generator, frame: pd.DataFrame, columns: list[str], share: float
) -> pd.DataFrame:
    """A few rows get one empty field, as exports do (dropped and counted on load)."""
    dirty = np.flatnonzero(rng.random(len(frame)) < share)
    if dirty.size:
        frame = frame.astype(dict.fromkeys(columns, object))
        for row, column in zip(dirty, rng.choice(columns, dirty.size), strict=True):
            frame.at[row, column] = None
    return frame


def generate_churn(n: int, *, seed: int = 7, dirty_share: float = DIRTY_SHARE) -> pd.DataFrame:
    """`n` customers in the churn file's 13 columns, plus `planted_churn` (the truth)."""
    rng = np.random.default_rng(seed)
    frame = _profiles(rng, n)
    days = rng.integers(5, 251, n)
    z = (
        1.0
        - 0.025 * days
        - 0.6 * (frame["产品持有数"].to_numpy() - 1)
        + 1.2 * frame["行业"].isin(CHURN_PRONE).to_numpy()
        - 1.0 * (frame["贷款余额"].to_numpy() > 0)
    )
    churn = rng.random(n) < _sigmoid(z)
    before = np.round(frame["存款月日均"].to_numpy() * rng.uniform(1.0, 1.8, n), 2)
    ratio = np.where(churn, rng.uniform(0.05, 0.45, n), rng.uniform(0.55, 1.4, n))
    opened = [AS_OF - timedelta(days=int(d)) for d in rng.integers(200, 365 * 25, n)]
    last = [AS_OF - timedelta(days=int(d)) for d in rng.integers(0, 60, n)]
    frame["近一年交易天数"] = days
    frame["开户日期"] = [d.isoformat() for d in opened]
    frame["最近交易日期"] = [d.isoformat() for d in last]
    frame["金融资产月日均"] = np.round(before * ratio, 2)
    frame["近三个月金融资产月日均"] = before
    frame = _blank_some(rng, frame, list(CHURN_SCHEMA.columns[1:9]), dirty_share)
    frame["planted_churn"] = churn
    return frame


def generate_potential(
    n: int, *, seed: int = 7, dirty_share: float = DIRTY_SHARE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """File 1 (10 columns, plus `planted_potential`) and file 2 (客户编号, 注册地址, 经营地址)."""
    rng = np.random.default_rng(seed)
    frame = _profiles(rng, n)
    industry = frame["行业"]
    z = (
        -2.4
        + 1.8 * np.log10(frame["注册资本"].to_numpy() / 1e6)
        + 0.8 * (frame["产品持有数"].to_numpy() - 2)
        + 1.5 * industry.isin(ACTIVE).to_numpy()
        - 1.5 * (industry == "农林牧渔业").to_numpy()
    )
    potential = rng.random(n) < _sigmoid(z)
    by_count = rng.random(n) < 0.7
    frame["月均交易笔数"] = np.where(
        potential & by_count, rng.integers(4, 41, n), rng.integers(0, 4, n)
    )
    frame["月均交易金额"] = np.round(
        np.where(
            potential & ~by_count,
            rng.uniform(3_000_001, 5e7, n),
            rng.uniform(0, 2_999_999, n),
        ),
        2,
    )
    frame = _blank_some(rng, frame, list(POTENTIAL_SCHEMA.columns[1:8]), dirty_share)
    frame["planted_potential"] = potential
    related = _addresses(rng, frame[ID_COLUMN].to_numpy())
    keep = rng.random(n) >= 0.02
    related = related[keep].iloc[rng.permutation(int(keep.sum()))].reset_index(drop=True)
    return frame, related


def _addresses(rng: np.random.Generator, ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    n = len(ids)
    others = [p for p in PROVINCES if p != "广东省"]
    registered = np.where(
        rng.random(n) < GUANGDONG_SHARE,
        "广东省",
        np.asarray(others)[rng.integers(0, len(others), n)],
    )
    moved = rng.random(n) < 0.2
    provinces = np.asarray(list(PROVINCES))
    operating = np.where(moved, provinces[rng.integers(0, len(provinces), n)], registered)

    def street(province: str) -> str:
        cities = PROVINCES[province]
        return f"{province}{cities[rng.integers(len(cities))]}建设路{rng.integers(1, 999)}号"

    return pd.DataFrame(
        {
            ID_COLUMN: ids,
            "注册地址": [street(p) for p in registered],
            "经营地址": [street(p) for p in operating],
        }
    )


RELATED_COLUMNS = RELATED_SCHEMA.columns
