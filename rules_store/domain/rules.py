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


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def match_rules(held: int, rules: Sequence[Rule]) -> dict[int, Rule]:
    """For each item not held, the strongest rule that offers it.

    A rule matches when all its antecedents are held and none of its consequents is.
    """
    best: dict[int, Rule] = {}
    for rule in rules:
        if rule.antecedents & ~held or rule.consequents & held:
            continue
        for item in _bits(rule.consequents):
            current = best.get(item)
            if current is None or rule.strength() > current.strength():
                best[item] = rule
    return best


def recommend(
    held: int,
    rules: Sequence[Rule],
    popularity: Sequence[tuple[int, float]],
    *,
    top_k: int = 3,
) -> tuple[Offer, ...]:
    """Up to `top_k` offers for a customer holding `held`, best first.

    `popularity` is the segment's items with their holding rates, most held first: a
    customer whom no rule matches is offered the most held items they lack, marked as
    fallback.

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
        ranked = sorted(matched.items(), key=lambda kv: (kv[1].strength(), -kv[0]), reverse=True)
        return tuple(Offer(item, rule.confidence, rule, False) for item, rule in ranked[:top_k])
    lacking = [(item, rate) for item, rate in popularity if not held >> item & 1 and rate > 0]
    return tuple(Offer(item, rate, None, True) for item, rate in lacking[:top_k])
