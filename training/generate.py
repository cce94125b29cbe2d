"""Synthetic retail customers in the bank's own format, with co-holding patterns planted.

Four personas stand in for real segments; each has its own demographics and product
habits, and one planted rule: among the persona's customers who hold the antecedents,
the consequent is held with the planted probability, otherwise rarely. Training should
find each planted rule, strongest, in the segment where that persona is the majority.

| persona            | share | profile                                     | planted rule                      |
|--------------------|-------|---------------------------------------------|-----------------------------------|
| young_professional | 25 %  | 22-35, 本科+, 新市民, 手机银行, 中-中高风险 | 存款 + 贷款和信用卡 -> 基金和积利宝 |
| payroll_family     | 30 %  | 30-50, 已婚, 代发, 按揭, 网银               | 贷款和信用卡 + 保险 -> 理财         |
| affluent_investor  | 15 %  | 40-65, 股东/企业主, 中高-高风险             | 理财 + 国债 -> 代销资管产品         |
| rural_elder        | 30 %  | 55-80, 村民, 初中及以下, 柜面, 低风险       | 存款 + 国债 -> 积存金               |

Customers hold 理财, 保险 and 基金和积利宝 more when their stated preference for it
(理财产品偏好, 保险产品偏好, 基金产品偏好) is high: the persona's holding rate times
PREFERENCE (低 0.3, 中 1, 高 3), at most 0.97, before the planted rules. Planted
openings after the snapshot follow the same factor (training/openings.py).

Counts (持有…个数) agree with balances: a product count is positive exactly when its
balance is. A small share of rows gets one empty field (dirty rows, dropped on load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.files import atomic_path

FileFormat = Literal["del", "csv", "parquet"]


@dataclass(frozen=True)
class PlantedRule:
    persona: str
    antecedents: tuple[str, ...]
    consequent: str
    confidence: float  # P(consequent | antecedents) inside the persona
    base_rate: float  # P(consequent | not all antecedents) inside the persona


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    age: tuple[int, int]
    education: tuple[float, ...]  # over 初中及以下 高中 大专 本科 硕士及以上
    marital: tuple[float, ...]  # over 未婚 已婚 离异 丧偶
    flags: dict[str, float]  # P(flag = 1)
    risk: tuple[float, ...]  # over 低风险 … 高风险
    channel: tuple[float, ...]  # over 柜面 网银 手机银行 ATM
    preference: tuple[float, float, float, float]  # P(高) for 储蓄 理财 保险 基金 preferences
    holding: dict[str, float]  # P(hold) before the planted rule


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "young_professional",
        0.25,
        (22, 35),
        (0.02, 0.08, 0.2, 0.5, 0.2),
        (0.75, 0.23, 0.02, 0.0),
        {"新市民": 0.6, "代发客户": 0.5, "大学生客户": 0.15, "村民": 0.02},
        (0.05, 0.2, 0.4, 0.3, 0.05),
        (0.02, 0.18, 0.75, 0.05),
        (0.2, 0.3, 0.1, 0.6),
        {"存款": 0.95, "贷款和信用卡": 0.6, "基金和积利宝": 0.1, "保险": 0.1, "理财": 0.15},
    ),
    Persona(
        "payroll_family",
        0.30,
        (30, 50),
        (0.1, 0.3, 0.3, 0.25, 0.05),
        (0.1, 0.85, 0.05, 0.0),
        {"代发客户": 0.9, "按揭客户": 0.7, "新市民": 0.2, "村民": 0.05},
        (0.15, 0.4, 0.35, 0.1, 0.0),
        (0.15, 0.5, 0.3, 0.05),
        (0.5, 0.3, 0.5, 0.2),
        {"存款": 0.99, "贷款和信用卡": 0.75, "保险": 0.45, "理财": 0.08, "基金和积利宝": 0.1},
    ),
    Persona(
        "affluent_investor",
        0.15,
        (40, 65),
        (0.05, 0.15, 0.2, 0.4, 0.2),
        (0.05, 0.85, 0.08, 0.02),
        {"股东客户": 0.5, "企业主客户": 0.6, "代发客户": 0.2},
        (0.0, 0.05, 0.3, 0.45, 0.2),
        (0.2, 0.6, 0.15, 0.05),
        (0.3, 0.8, 0.4, 0.5),
        {"存款": 0.99, "理财": 0.8, "国债": 0.5, "代销资管产品": 0.05, "基金和积利宝": 0.4},
    ),
    Persona(
        "rural_elder",
        0.30,
        (55, 80),
        (0.7, 0.2, 0.07, 0.03, 0.0),
        (0.02, 0.7, 0.05, 0.23),
        {"村民": 0.8, "新市民": 0.01},
        (0.7, 0.25, 0.05, 0.0, 0.0),
        (0.8, 0.05, 0.05, 0.1),
        (0.8, 0.1, 0.2, 0.02),
        {"存款": 0.99, "国债": 0.4, "积存金": 0.03, "保险": 0.1},
    ),
)

PLANTED_RULES: tuple[PlantedRule, ...] = (
    PlantedRule("young_professional", ("存款", "贷款和信用卡"), "基金和积利宝", 0.7, 0.08),
    PlantedRule("payroll_family", ("贷款和信用卡", "保险"), "理财", 0.65, 0.05),
    PlantedRule("affluent_investor", ("理财", "国债"), "代销资管产品", 0.75, 0.05),
    PlantedRule("rural_elder", ("存款", "国债"), "积存金", 0.6, 0.03),
)

DIRTY_SHARE = 0.001
PREFERENCE_FIELD = {"理财": "理财产品偏好", "保险": "保险产品偏好", "基金和积利宝": "基金产品偏好"}
PREFERENCE = {"低": 0.3, "中": 1.0, "高": 3.0}
CATALOG = RETAIL_SCHEMA.products  # the personas and rules above name seed 001's products


def _choice(
    rng: np.random.Generator, values: tuple[str, ...], p: tuple[float, ...], n: int
) -> npt.NDArray[np.object_]:
    probs = np.asarray(p, dtype=float)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs / probs.sum())]


def _holdings(
    rng: np.random.Generator, persona: Persona, n: int, columns: dict[str, object]
) -> npt.NDArray[np.int64]:
    masks = np.zeros(n, dtype=np.int64)
    for i, product in enumerate(CATALOG.names):
        rate = np.full(n, persona.holding.get(product, 0.02))
        if product in PREFERENCE_FIELD:
            levels = np.asarray(columns[PREFERENCE_FIELD[product]])
            factor = np.vectorize(PREFERENCE.__getitem__, otypes=[float])(levels)
            rate = np.minimum(rate * factor, 0.97)
        held = rng.random(n) < rate
        masks |= held.astype(np.int64) << i
    for rule in PLANTED_RULES:
        if rule.persona != persona.name:
            continue
        need = CATALOG.mask(rule.antecedents)
        bit = CATALOG.mask([rule.consequent])
        has_all = (masks & need) == need
        p = np.where(has_all, rule.confidence, rule.base_rate)
        held = rng.random(n) < p
        masks = np.where(held, masks | bit, masks & ~bit)
    return masks


def _persona_frame(rng: np.random.Generator, persona: Persona, n: int) -> pd.DataFrame:
    schema = RETAIL_SCHEMA
    columns: dict[str, object] = {
        "年龄": rng.integers(persona.age[0], persona.age[1] + 1, n),
        "性别": _choice(rng, ("男", "女"), (0.5, 0.5), n),
        "学历": _choice(rng, schema.field("学历").values, persona.education, n),
        "婚姻状况": _choice(rng, schema.field("婚姻状况").values, persona.marital, n),
        "风险评级": _choice(rng, schema.field("风险评级").values, persona.risk, n),
        "交易渠道偏好": _choice(rng, schema.field("交易渠道偏好").values, persona.channel, n),
    }
    columns["开户年限"] = np.minimum(
        rng.integers(0, 30, n), np.maximum(np.asarray(columns["年龄"]) - 18, 0)
    )
    for flag in ("村民", "新市民", "代发客户", "按揭客户", "大学生客户", "股东客户", "企业主客户"):
        columns[flag] = (rng.random(n) < persona.flags.get(flag, 0.03)).astype(np.int64)
    for name, p_high in zip(
        ("储蓄产品偏好", "理财产品偏好", "保险产品偏好", "基金产品偏好"),
        persona.preference,
        strict=True,
    ):
        columns[name] = _choice(
            rng, ("低", "中", "高"), ((1 - p_high) / 2, (1 - p_high) / 2, p_high), n
        )
    masks = _holdings(rng, persona, n, columns)

    balances: dict[str, npt.NDArray[np.float64]] = {}
    for i, (product, balance_columns) in enumerate((p.name, p.balances) for p in CATALOG.products):
        held = (masks >> i & 1).astype(bool)
        scale = 200_000.0 if product in ("代销资管产品", "理财", "贷款和信用卡") else 30_000.0
        if len(balance_columns) == 1:
            amount = np.round(rng.lognormal(np.log(scale), 1.0, n), 2)
            balances[balance_columns[0]] = np.where(held, amount, 0.0)
            continue
        first = rng.random(n) < 0.7  # which of the two merged balances carries it
        second = ~first | (rng.random(n) < 0.3)
        for column, part in zip(balance_columns, (first, second), strict=True):
            amount = np.round(rng.lognormal(np.log(scale / 2), 1.0, n), 2)
            balances[column] = np.where(held & part, amount, 0.0)

    def count(balance: npt.NDArray[np.float64], most: int) -> npt.NDArray[np.int64]:
        return np.where(balance > 0, rng.integers(1, most + 1, n), 0)

    counts = {
        "持有定期存款产品个数": count(balances["存款余额"], 3),
        "持有贷款产品个数": count(balances["贷款余额"] + balances["信用卡分期余额"], 2),
        "持有理财产品个数": count(balances["理财余额"], 4),
        "持有保险产品个数": count(balances["保险余额"], 3),
        "持有基金产品个数": count(balances["基金余额"] + balances["积利宝余额"], 5),
        "持有国债产品个数": count(balances["国债余额"], 2),
        "持有高净值产品个数": count(balances["高净值产品余额"], 2),
    }
    columns["持有金融产品个数"] = sum(counts.values())
    columns["持有渠道产品个数"] = rng.integers(1, 6, n)
    columns["签约消费渠道个数"] = rng.integers(0, 5, n)
    columns.update(counts)
    columns.update(balances)
    frame = pd.DataFrame(columns)
    frame["persona"] = persona.name
    return frame


def generate_retail(n: int, *, seed: int = 7, dirty_share: float = DIRTY_SHARE) -> pd.DataFrame:
    """`n` customers in the retail schema's column order, plus a `persona` column (the truth)."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n, [p.share for p in PERSONAS])
    frame = pd.concat(
        [
            _persona_frame(rng, persona, int(size))
            for persona, size in zip(PERSONAS, sizes, strict=True)
        ],
        ignore_index=True,
    )
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    ids = rng.choice(np.arange(10**15, 10**15 + 50 * max(n, 1)), size=n, replace=False)
    frame.insert(0, RETAIL_SCHEMA.id_column, ids.astype(str))
    frame = frame[[*RETAIL_SCHEMA.columns, "persona"]]
    dirty = rng.random(n) < dirty_share
    if dirty.any():
        blank_columns = rng.integers(1, len(RETAIL_SCHEMA.columns), int(dirty.sum()))
        frame = frame.astype(
            {RETAIL_SCHEMA.columns[c]: object for c in set(blank_columns.tolist())}
        )
        for row, column in zip(np.flatnonzero(dirty), blank_columns, strict=True):
            frame.iat[row, int(column)] = None
    return frame


def write_retail(
    frame: pd.DataFrame, path: Path, fmt: FileFormat, *, encoding: str = "utf-8"
) -> None:
    """Write in the bank's formats (`write_table`)."""
    write_table(frame, RETAIL_SCHEMA.columns, path, fmt, encoding=encoding)


def write_table(
    frame: pd.DataFrame,
    columns: tuple[str, ...],
    path: Path,
    fmt: FileFormat,
    *,
    encoding: str = "utf-8",
) -> None:
    """`columns` of `frame` in the bank's formats: `.del` has no header and quotes
    strings, CSV has a header."""
    data = frame[list(columns)]
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            data.to_parquet(tmp, index=False)
        else:
            data.to_csv(
                tmp,
                index=False,
                header=fmt == "csv",
                quoting=2 if fmt == "del" else 0,  # csv.QUOTE_NONNUMERIC for DB2 exports
                encoding=encoding,
                lineterminator="\n",
            )
