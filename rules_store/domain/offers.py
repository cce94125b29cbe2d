"""Precomputed offers: a recommendation in the stream is one lookup, not a scan of rules.

For each segment, the offers of every holdings mask are computed once with the pure
`recommend` (so they are the same by construction). With up to `EAGER_ITEMS` products
that is a flat list per segment (2^8 = 256 entries for the retail catalog); a larger
catalog fills a per-segment cache on first use instead.

A bundle that carries a learned ranker is scored with it (rules_store/domain/ranking.py):
cached per (segment, holdings) when its offers depend on nothing else (popular, itemcf),
computed from the profile otherwise (propensity, blend).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rules_store.bundle.model import Bundle
from rules_store.domain.ranking import Customers, needs_profile, rank_offers, scorer_for
from rules_store.domain.rules import Offer, recommend

EAGER_ITEMS = 12  # 4,096 masks per segment


class OfferIndex:
    """`offers(segment, held, features)` for one bundle and one `top_k`."""

    def __init__(self, bundle: Bundle, *, top_k: int = 3) -> None:
        self.bundle = bundle
        self.top_k = top_k
        n = len(bundle.items)
        self.eager = n <= EAGER_ITEMS
        self._tables: list[list[tuple[Offer, ...]]] = []
        self._caches: list[dict[int, tuple[Offer, ...]]] = [{} for _ in bundle.segments]
        if self.eager and bundle.ranker is None:
            self._tables = [
                [recommend(held, s.rules, s.popularity, top_k=top_k) for held in range(1 << n)]
                for s in bundle.segments
            ]
        self.scorer = scorer_for(
            bundle.ranker,
            tuple(s.rules for s in bundle.segments),
            tuple(s.popularity for s in bundle.segments),
            n,
        )
        self.by_profile = needs_profile(self.scorer)
        self._width = len(bundle.segment_model.features)

    def ranked(
        self, segment: int, held: int, features: Sequence[float] | None, *, top_k: int
    ) -> tuple[Offer, ...]:
        """The bundle's ranker's offers for one customer (`features`: the encoded profile)."""
        row = np.zeros((1, self._width)) if features is None else np.asarray([features], float)
        customers = Customers(row, np.asarray([held]), np.asarray([segment]))
        return rank_offers(self.scorer, customers, top_k=top_k)[0]

    def offers(
        self, segment: int, held: int, features: Sequence[float] | None = None
    ) -> tuple[Offer, ...]:
        if self.bundle.ranker is not None:
            if self.by_profile:
                return self.ranked(segment, held, features, top_k=self.top_k)
            cache = self._caches[segment]
            found = cache.get(held)
            if found is None:
                found = cache[held] = self.ranked(segment, held, None, top_k=self.top_k)
            return found
        if self.eager:
            return self._tables[segment][held]
        cache = self._caches[segment]
        found = cache.get(held)
        if found is None:
            s = self.bundle.segments[segment]
            found = cache[held] = recommend(held, s.rules, s.popularity, top_k=self.top_k)
        return found
