"""The bitmask miner gives exactly mlxtend's rules and floats."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules_store.domain.rules import Rule
from training.mining import (
    MiningError,
    itemset_counts,
    masks_from_table,
    mine_masks,
    mine_table_mlxtend,
    prune_redundant,
)


def _table(seed: int, rows: int, items: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.05, 0.95, items)
    data = rng.random((rows, items)) < rates
    if items >= 3:  # a real association, so that there are rules to compare
        data[:, 2] |= data[:, 0] & data[:, 1] & (rng.random(rows) < 0.6)
    return pd.DataFrame(data, columns=[f"item{i}" for i in range(items)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(1, 400),
    items=st.integers(1, 8),
    min_support=st.sampled_from([0.01, 0.05, 0.1, 0.3]),
    min_confidence=st.sampled_from([0.0, 0.2, 0.5, 0.8]),
    min_lift=st.sampled_from([0.0, 1.0, 1.2]),
)
def test_bitmask_rules_are_bit_identical_to_mlxtend(
    seed: int, rows: int, items: int, min_support: float, min_confidence: float, min_lift: float
) -> None:
    table = _table(seed, rows, items)
    thresholds = {
        "min_support": min_support,
        "min_confidence": min_confidence,
        "min_lift": min_lift,
    }
    ours = mine_masks(masks_from_table(table), items, **thresholds)
    reference = mine_table_mlxtend(table, **thresholds)
    assert ours == reference


def test_identity_holds_on_a_large_table_with_many_rules() -> None:
    table = _table(11, 20_000, 8)
    ours = mine_masks(masks_from_table(table), 8, min_support=0.01, min_confidence=0.1)
    assert len(ours) > 200
    assert ours == mine_table_mlxtend(table, min_support=0.01, min_confidence=0.1)


@given(st.lists(st.integers(0, 31), max_size=60))
def test_itemset_counts_count_every_superset(masks: list[int]) -> None:
    counts = itemset_counts(np.array(masks, dtype=np.int64), 5)
    for itemset in range(32):
        assert counts[itemset] == sum(1 for m in masks if m & itemset == itemset)


def test_every_rule_is_above_all_three_thresholds() -> None:
    table = _table(3, 5_000, 6)
    rules = mine_masks(
        masks_from_table(table), 6, min_support=0.05, min_confidence=0.4, min_lift=1.05
    )
    assert rules
    assert all(r.support >= 0.05 and r.confidence >= 0.4 and r.lift >= 1.05 for r in rules)


@pytest.mark.parametrize(
    ("support", "confidence"), [(0.0, 0.5), (1.5, 0.5), (0.1, -0.1), (0.1, 1.1)]
)
def test_thresholds_outside_their_range_are_refused(support: float, confidence: float) -> None:
    with pytest.raises(MiningError, match="min-"):
        mine_masks(np.array([1, 3]), 2, min_support=support, min_confidence=confidence)


def test_no_rows_give_no_rules() -> None:
    assert mine_masks(np.array([], dtype=np.int64), 8, min_support=0.1, min_confidence=0.1) == []


def _rule(antecedents: int, consequents: int, confidence: float) -> Rule:
    return Rule(antecedents, consequents, 0.5, 0.5, 0.2, confidence, 1.2, 0.01, 1.1)


def test_a_rule_no_more_confident_than_a_more_general_one_is_pruned() -> None:
    general = _rule(0b001, 0b100, 0.7)
    redundant = _rule(0b011, 0b100, 0.7)  # adds item 1 and gains nothing
    useful = _rule(0b011, 0b100, 0.9)  # adds item 1 and is more confident: kept
    sharper = _rule(0b010, 0b100, 0.6)
    kept, pruned = prune_redundant([general, redundant, sharper])
    assert kept == [general, sharper]
    assert pruned == [redundant]
    kept, pruned = prune_redundant([general, useful])
    assert pruned == []


def test_pruning_only_compares_rules_with_the_same_consequents() -> None:
    a = _rule(0b001, 0b100, 0.9)
    b = _rule(0b011, 0b1000, 0.5)
    assert prune_redundant([a, b]) == ([a, b], [])


def test_rules_cover_every_split_of_every_frequent_itemset() -> None:
    # All 4 items always held: every non-empty proper split of every itemset is a rule.
    masks = np.full(10, 0b1111, dtype=np.int64)
    rules = mine_masks(masks, 4, min_support=0.5, min_confidence=0.5)
    expected = sum(2**size - 2 for size in range(2, 5) for _ in combinations(range(4), size))
    assert len(rules) == expected
    assert all(r.confidence == 1.0 and r.conviction == float("inf") for r in rules)
