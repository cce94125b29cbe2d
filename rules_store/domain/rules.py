"""Association rules over a fixed item list, and the recommendation they give.

Written once, I/O-free, for both the batch commands and the stream: the same holdings,
segment and rules give the same offers everywhere. Itemsets are bitmasks over the item
list (bit i = items[i]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Rule:
    """antecedents -> consequents with mlxtend's measures (supports are shares of customers)."""

    antecedents: int
    consequents: int
    antecedent_support: float
    consequent_support: float
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float

    def strength(self) -> tuple[float, float, float, int, int]:
        """Preference order: confidence, lift, support; the masks only make it total."""
        return (self.confidence, self.lift, self.support, -self.antecedents, -self.consequents)


RULE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Rule))


@dataclass(frozen=True)
class Offer:
    item: int  # bit index into the item list
    score: float  # the explaining rule's confidence, or the segment's holding rate (fallback)
    rule: Rule | None
    fallback: bool
    # What else explains it when a learned ranker chose it (rules_store/domain/ranking.py).
    evidence: Mapping[str, Any] | None = None


def format_itemset(mask: int, items: Sequence[str]) -> str:
    """Item names joined by `|`, in item-list (catalog) order.

    >>> format_itemset(0b101, ["存款", "保险", "基金和积利宝"])
    '存款|基金和积利宝'
    """
    return "|".join(name for i, name in enumerate(items) if mask >> i & 1)


def set_bits(mask: int) -> list[int]:
    """The set bits of `mask`, lowest first; one step per set bit, not per catalog item.

    >>> set_bits(0b1010)
    [1, 3]
    """
    bits = []
    while mask:
        low = mask & -mask
        bits.append(low.bit_length() - 1)
        mask ^= low
    return bits


def match_rules(held: int, rules: Sequence[Rule]) -> dict[int, Rule]:
    """For each item not held, the strongest rule that offers it.

    A rule matches when all its antecedents are held and none of its consequents is.
    """
    best: dict[int, Rule] = {}
    for rule in rules:
        if rule.antecedents & ~held or rule.consequents & held:
            continue
        for item in set_bits(rule.consequents):
            current = best.get(item)
            if current is None or rule.strength() > current.strength():
                best[item] = rule
    return best


def rank_popularity(
    popularity: Sequence[tuple[int, float]], values: Sequence[float]
) -> tuple[tuple[int, float], ...]:
    """A segment's items in fallback offer order: by holding rate x value weight, ties in
    popularity order (all weights 1: unchanged). Computed once per segment and catalog.

    >>> rank_popularity([(0, 0.9), (1, 0.4)], [1.0, 3.0])
    ((1, 0.4), (0, 0.9))
    """
    return tuple(sorted(popularity, key=lambda ir: -ir[1] * values[ir[0]]))


def recommend(
    held: int,
    rules: Sequence[Rule],
    popularity: Sequence[tuple[int, float]],
    *,
    top_k: int = 3,
    values: Sequence[float] | None = None,
) -> tuple[Offer, ...]:
    """Up to `top_k` offers for a customer holding `held`, best first.

    `popularity` is the segment's items with their holding rates in offer order (most
    held first, or `rank_popularity`'s order): a customer whom no rule matches is offered
    the first items they lack, marked as fallback. `values` are the catalog's value
    weights: rule offers are ranked by confidence x value, then by the rule's strength
    (all weights 1, the default: by strength alone). An offer's `score` stays the
    unweighted evidence.

    >>> r = Rule(0b01, 0b10, 0.5, 0.4, 0.3, 0.6, 1.5, 0.1, 1.5)
    >>> [(o.item, o.fallback) for o in recommend(0b01, [r], [(0, 0.9), (1, 0.4)])]
    [(1, False)]
    >>> [(o.item, o.fallback) for o in recommend(0b00, [r], [(0, 0.9), (1, 0.4)])]
    [(0, True), (1, True)]
    """
    if top_k <= 0:
        return ()
    matched = match_rules(held, rules)
    if matched:
        weight = (lambda item: values[item]) if values is not None else (lambda _: 1.0)
        ranked = sorted(
            matched.items(),
            key=lambda kv: (kv[1].confidence * weight(kv[0]), kv[1].strength(), -kv[0]),
            reverse=True,
        )
        return tuple(Offer(item, rule.confidence, rule, False) for item, rule in ranked[:top_k])
    lacking: list[Offer] = []
    for item, rate in popularity:  # stops at top_k: a 64-product segment is not scanned
        if rate > 0 and not held >> item & 1:
            lacking.append(Offer(item, rate, None, True))
            if len(lacking) == top_k:
                break
    return tuple(lacking)
