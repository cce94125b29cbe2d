"""Association rules per segment, exactly as mlxtend computes them, from holdings bitmasks.

With few items (8 retail products) every customer's holdings fit in a small integer, so
instead of scanning a customers x items matrix per candidate itemset (apriori) we count
customers per distinct mask once (`bincount`) and get every itemset's support with a
superset-sum over 2^items cells. Supports are count / customers, and the rule measures
use mlxtend's own formulas, so the floats are bit-identical (tests/unit/test_mining.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import numpy.typing as npt
import pandas as pd

# mlxtend's import runs warnings.simplefilter("always", DeprecationWarning) for the whole
# process, which floods every command with other libraries' deprecation notices.
with warnings.catch_warnings():
    from mlxtend.frequent_patterns import apriori, association_rules

from rules_store.domain.rules import Rule
from rules_store.errors import XsellError

_MLXTEND_METRICS = (
    "antecedent support",
    "consequent support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
)
MAX_BITMASK_ITEMS = 20  # 2^20 cells of int64 = 8 MiB; wider tables go through mlxtend


class MiningError(XsellError, ValueError):
    """Mining parameters or input are unusable."""


def _check_thresholds(min_support: float, min_confidence: float) -> None:
    if not 0.0 < min_support <= 1.0:
        msg = f"min-support must be in (0, 1]; got {min_support}"
        raise MiningError(msg)
    if not 0.0 <= min_confidence <= 1.0:
        msg = f"min-confidence must be in [0, 1]; got {min_confidence}"
        raise MiningError(msg)


def itemset_counts(masks: npt.NDArray[np.integer], n_items: int) -> npt.NDArray[np.int64]:
    """counts[s] = number of rows whose mask contains every item of itemset s."""
    counts = np.bincount(masks.astype(np.int64), minlength=1 << n_items).astype(np.int64)
    for bit in range(n_items):
        view = counts.reshape(-1, 2, 1 << bit)
        view[:, 0, :] += view[:, 1, :]
    return counts


def _measures(s_ac: float, s_a: float, s_c: float, n: int) -> tuple[float, float, float, float]:
    # mlxtend 0.25's formulas, operation for operation, so that the floats match exactly.
    confidence = (s_ac * float(n)) / (s_a * float(n) - 0.0)
    lift = confidence / s_c
    leverage = s_ac - s_a * s_c
    conviction = (1.0 - s_c) / (1.0 - confidence) if confidence < 1.0 else float("inf")
    return confidence, lift, leverage, conviction


def _rule(s_a: float, s_c: float, s_ac: float, antecedents: int, consequents: int, n: int) -> Rule:
    confidence, lift, leverage, conviction = _measures(s_ac, s_a, s_c, n)
    return Rule(antecedents, consequents, s_a, s_c, s_ac, confidence, lift, leverage, conviction)


def mine_masks(
    masks: npt.NDArray[np.integer],
    n_items: int,
    *,
    min_support: float,
    min_confidence: float,
    min_lift: float = 0.0,
) -> list[Rule]:
    """Rules from holdings bitmasks: mlxtend's apriori + association_rules, exactly, but fast."""
    _check_thresholds(min_support, min_confidence)
    if n_items > MAX_BITMASK_ITEMS:
        msg = f"{n_items} items is too many for bitmask counting (max {MAX_BITMASK_ITEMS})"
        raise MiningError(msg)
    n = len(masks)
    if n == 0:
        return []
    counts = itemset_counts(masks, n_items)
    support = {s: int(c) / n for s, c in enumerate(counts) if s and int(c) / n >= min_support}
    rules = []
    for itemset, s_ac in support.items():
        if itemset & (itemset - 1) == 0:  # a single item makes no rule
            continue
        bits = [1 << i for i in range(n_items) if itemset >> i & 1]
        for size in range(len(bits) - 1, 0, -1):
            for chosen in combinations(bits, size):
                antecedents = sum(chosen)
                consequents = itemset & ~antecedents
                rule = _rule(
                    support[antecedents], support[consequents], s_ac, antecedents, consequents, n
                )
                if rule.confidence >= min_confidence and rule.lift >= min_lift:
                    rules.append(rule)
    return sort_rules(rules)


def mine_table_mlxtend(
    table: pd.DataFrame, *, min_support: float, min_confidence: float, min_lift: float = 0.0
) -> list[Rule]:
    """The reference path: mlxtend apriori + association_rules on a boolean item table.

    Item bits follow the table's column order. Used for tables too wide for bitmasks and
    by the tests and benchmark as the yardstick.
    """
    _check_thresholds(min_support, min_confidence)
    if table.empty:
        return []
    frequent = apriori(table.astype(bool), min_support=min_support)
    if frequent.empty or frequent["itemsets"].map(len).max() < 2:
        return []
    found = association_rules(
        frequent,
        num_itemsets=len(table),
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=list(_MLXTEND_METRICS),
    )
    found = found[found["lift"] >= min_lift]
    return sort_rules(
        [
            Rule(
                antecedents=sum(1 << int(i) for i in row["antecedents"]),
                consequents=sum(1 << int(i) for i in row["consequents"]),
                antecedent_support=float(row["antecedent support"]),
                consequent_support=float(row["consequent support"]),
                support=float(row["support"]),
                confidence=float(row["confidence"]),
                lift=float(row["lift"]),
                leverage=float(row["leverage"]),
                conviction=float(row["conviction"]),
            )
            for row in found.to_dict("records")
        ]
    )


def mine_holdings(
    masks: npt.NDArray[np.integer],
    n_items: int,
    *,
    min_support: float,
    min_confidence: float,
    min_lift: float = 0.0,
) -> list[Rule]:
    """Rules from holdings bitmasks of any catalog (up to 64 products): bitmask counting
    up to MAX_BITMASK_ITEMS items, mlxtend's apriori on the 0/1 table beyond."""
    thresholds = {"min_support": min_support, "min_confidence": min_confidence}
    if n_items <= MAX_BITMASK_ITEMS:
        return mine_masks(masks, n_items, min_lift=min_lift, **thresholds)
    bits = np.arange(n_items, dtype=np.uint64)
    held = (masks.astype(np.int64).view(np.uint64)[:, None] >> bits) & np.uint64(1)
    table = pd.DataFrame(held.astype(bool), columns=range(n_items))
    return mine_table_mlxtend(table, min_lift=min_lift, **thresholds)


def masks_from_table(table: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Row bitmasks of a 0/1 item table (bit i = column i)."""
    values = table.to_numpy(dtype=bool)
    weights = np.left_shift(np.int64(1), np.arange(values.shape[1], dtype=np.int64))
    masks: npt.NDArray[np.int64] = values.astype(np.int64) @ weights
    return masks


def sort_rules(rules: Sequence[Rule]) -> list[Rule]:
    """Strongest first (confidence, lift, support), then by itemsets, for stable files."""
    return sorted(rules, key=lambda r: r.strength(), reverse=True)


def prune_redundant(rules: Sequence[Rule]) -> tuple[list[Rule], list[Rule]]:
    """Split off rules whose confidence does not beat a more general rule's.

    A rule A -> C is redundant when some rule A' -> C with A' a proper subset of A has a
    confidence at least as high: the extra antecedents add nothing. Returns (kept, pruned).
    """
    by_consequent: dict[int, list[Rule]] = {}
    for rule in rules:
        by_consequent.setdefault(rule.consequents, []).append(rule)
    kept, pruned = [], []
    for rule in rules:
        general = (
            other
            for other in by_consequent[rule.consequents]
            if other.antecedents != rule.antecedents
            and other.antecedents & rule.antecedents == other.antecedents
        )
        if any(other.confidence >= rule.confidence for other in general):
            pruned.append(rule)
        else:
            kept.append(rule)
    return kept, pruned
