"""The offers a customer may get now, in the order outcomes have taught: a product the
customer declined within the cool-down is dropped, and the rest are ordered by the
ranker's score times the learned acceptance (rules_store/domain/acceptance.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

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
    prior: Callable[[Offer], float],
) -> list[Arranged]:
    """`offers` (the ranker's order) without products cooling down, re-ordered by adaptive
    score when it is on. `prior` gives an offer's prior acceptance (the offline figure)."""
    allowed = [o for o in offers if not cooling_down(ledger, items[o.item], ts, outcomes)]
    if not adaptive.enabled:
        return [Arranged(o, None) for o in allowed]
    by_product = {items[o.item]: o for o in allowed}
    ranked = rank_adaptively(
        (Candidate(items[o.item], o.score, prior(o)) for o in allowed),
        book=book,
        version=version,
        segment=segment,
        policy=adaptive,
        trigger=trigger,
    )
    return [Arranged(by_product[s.product], s) for s in ranked]
