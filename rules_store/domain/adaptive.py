"""The offers a customer may get now, in the order outcomes have taught: a product the
customer declined within the cool-down is dropped, and the rest are ordered by the
ranker's score times the learned acceptance (rules_store/domain/acceptance.py).

The ranker's score enters made non-increasing along the ranker's own order (each offer's
score capped by those ranked above it): the rules ranker puts every rule before the
fallbacks whatever their figures, and with equal acceptance everywhere (no outcome yet,
sampling off) its order must stand.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from rules_store.domain.acceptance import (
    AdaptivePolicy,
    AdaptiveScore,
    ArmKey,
    Candidate,
    Tally,
    rank_adaptively,
)
from rules_store.domain.outcomes import OfferLedger, OutcomePolicy, cooling_down
from rules_store.domain.rules import Offer


class Arranged(NamedTuple):
    offer: Offer
    adaptive: AdaptiveScore | None  # None when adaptive ranking is off


def arrange_offers(
    offers: Sequence[Offer],
    items: Sequence[str],
    *,
    ledger: OfferLedger,
    ts: datetime,
    outcomes: OutcomePolicy,
    adaptive: AdaptivePolicy,
    book: Mapping[ArmKey, Tally],
    version: str,
    segment: int,
    trigger: str,
) -> list[Arranged]:
    """`offers` (the ranker's order) without products cooling down, re-ordered by adaptive
    score when it is on."""
    allowed = [o for o in offers if not cooling_down(ledger, items[o.item], ts, outcomes)]
    if not adaptive.enabled:
        return [Arranged(o, None) for o in allowed]
    by_product = {items[o.item]: o for o in allowed}
    capped = list(itertools.accumulate((o.score for o in allowed), min))
    ranked = rank_adaptively(
        (
            Candidate(items[o.item], score, adaptive.prior_mean)
            for o, score in zip(allowed, capped, strict=True)
        ),
        book=book,
        version=version,
        segment=segment,
        policy=adaptive,
        trigger=trigger,
    )
    return [Arranged(by_product[s.product], s) for s in ranked]


def adaptive_for(policy: AdaptivePolicy, figures: Mapping[str, Any]) -> AdaptivePolicy:
    """The policy with its prior acceptance from the bundle's offline figures: the share of
    customers whose first offer was the product they opened (forward evaluation), or held
    (hold-out), as the evaluation that chose the ranker measured it (`HR@1`). One figure for
    every product, so before any outcome the ranker's order stands. Without figures (a
    bundle not evaluated), the configured rate."""
    for protocol in ("forward", "hold-out"):
        hit = figures.get(protocol, {}).get("HR@1")
        if isinstance(hit, int | float) and not isinstance(hit, bool):
            return replace(policy, prior_mean=min(max(float(hit), 0.01), 0.99))
    return policy
