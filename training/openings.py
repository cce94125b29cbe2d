"""Planted product openings: who opens what after the snapshot, and why.

`xsell generate events` opens products with a probability that depends on the profile
and the holdings in this documented way, so the ranking of the recommenders on the
forward-in-time protocol is known in advance. A customer lacking product p at the
snapshot opens it during a window of D days with probability

    P(p) = 1 - (1 - min(CAP, BASE x PREFERENCE[p] x RULE[p]))^(D / 30)

- BASE = 0.05 per 30 days for every product;
- PREFERENCE[p]: for 理财, 保险 and 基金和积利宝, the customer's 理财产品偏好,
  保险产品偏好 or 基金产品偏好 (低 0.3, 中 1, 高 3); 1 for the other products;
- RULE[p] = 6 when the customer holds every antecedent of a planted rule whose
  consequent is p (training/generate.py's PLANTED_RULES, whatever the persona), else 1.

The snapshot generator holds those three products with the same preference factor, so
the dependence is in the data a model trains on. What each ranker can see of P:
popularity in the segment sees neither factor (only the personas' holding rates); rules
and item-based CF see RULE through co-holdings; propensity sees both. Hence the expected
order on forward MAP@7, which tests/unit/test_ranker_ordering.py checks:
popular < rules, itemcf < propensity, and every ranker near popularity when the truth
is shuffled across customers. Drainers open nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.generate import PLANTED_RULES, PREFERENCE, PREFERENCE_FIELD

BASE = 0.05
CAP = 0.6
RULE_BOOST = 6.0
MONTH_DAYS = 30


def preference_factor(product: str, profile: Mapping[str, Any]) -> float:
    """How much the customer's stated preference raises (or lowers) their interest in it.

    >>> preference_factor("理财", {"理财产品偏好": "高"}), preference_factor("国债", {})
    (3.0, 1.0)
    """
    field = PREFERENCE_FIELD.get(product)
    if field is None:
        return 1.0
    return PREFERENCE.get(str(profile.get(field, "")).strip(), 1.0)


def opening_probability(
    product: str, profile: Mapping[str, Any], held: frozenset[str], days: int
) -> float:
    """P(the customer opens `product`, lacked at the snapshot, within `days`) (see above)."""
    if product in held:
        return 0.0
    rule = any(r.consequent == product and set(r.antecedents) <= held for r in PLANTED_RULES)
    monthly = min(CAP, BASE * preference_factor(product, profile) * (RULE_BOOST if rule else 1.0))
    return float(1.0 - (1.0 - monthly) ** (days / MONTH_DAYS))


def opening_probabilities(
    products: Sequence[str], profile: Mapping[str, Any], held: frozenset[str], days: int
) -> dict[str, float]:
    """Each of the catalog's `products`: a product seed 001's catalog does not name has
    no preference field and no planted rule, so it opens at BASE."""
    return {p: opening_probability(p, profile, held, days) for p in products}
