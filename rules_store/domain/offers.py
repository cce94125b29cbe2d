"""Precomputed offers: a recommendation in the stream is one lookup, not a scan of rules.

For each segment, the offers of every holdings mask are computed once with the pure
`recommend` (so they are the same by construction). With up to `EAGER_ITEMS` products
that is a flat list per segment (2^8 = 256 entries for seed 001's catalog). A larger
catalog (up to 64 products) has too many holdings to precompute: holdings seen for the
first time keep only the rules that match them, found at once over the segment's rule
masks as arrays, and `recommend` ranks those few; the answer is cached, in a bounded
cache (2^64 holdings could fill any memory).

A bundle that carries a learned ranker is scored with it (rules_store/domain/ranking.py):
cached per (segment, holdings) when its offers depend on nothing else (popular, itemcf),
computed from the profile otherwise (propensity, blend). The worker builds its index with
`per_event_ranker=False`: a profile-dependent ranker costs milliseconds per customer
scored one at a time (bench/rankers.py), so its events get the rules' offers until the
stream scores per batch; `ranked` (/predict) still uses the ranker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rules_store.bundle.model import Bundle
from rules_store.domain.ranking import (
    Customers,
    held_array,
    needs_profile,
    rank_offers,
    scorer_for,
)
from rules_store.domain.rules import Offer, Rule, rank_popularity, recommend

EAGER_ITEMS = 12  # 4,096 masks per segment
MAX_CACHED = 200_000  # holdings per segment; the cache starts over when full


class _RuleMasks:
    """A segment's rules with their antecedent and consequent masks as uint64 arrays."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.antecedents: npt.NDArray[np.uint64] = np.array(
            [r.antecedents for r in rules], dtype=np.uint64
        )
        self.consequents: npt.NDArray[np.uint64] = np.array(
            [r.consequents for r in rules], dtype=np.uint64
        )

    def matching(self, held: int) -> list[Rule]:
        """The rules `match_rules` would keep for `held` (all antecedents held, no
        consequent held), in their order."""
        mask = np.uint64(held)
        hit = ((self.antecedents & ~mask) | (self.consequents & mask)) == 0
        return [self.rules[i] for i in np.flatnonzero(hit).tolist()]


class OfferIndex:
    """`offers(segment, held, features)` for one bundle and one `top_k`."""

    def __init__(self, bundle: Bundle, *, top_k: int = 3, per_event_ranker: bool = True) -> None:
        self.bundle = bundle
        self.top_k = top_k
        n = len(bundle.items)
        self.values = bundle.catalog.values
        self.scorer = scorer_for(
            bundle.ranker,
            tuple(s.rules for s in bundle.segments),
            tuple(s.popularity for s in bundle.segments),
            self.values,
        )
        self.by_profile = needs_profile(self.scorer)
        # Whether offers() follows the bundle's ranker or, for a profile-dependent one
        # left out of per-event scoring, the rules.
        self.follows_ranker = bundle.ranker is not None and (
            per_event_ranker or not self.by_profile
        )
        self.eager = n <= EAGER_ITEMS and not self.follows_ranker
        self._tables: list[list[tuple[Offer, ...]]] = []
        self._caches: list[dict[int, tuple[Offer, ...]]] = [{} for _ in bundle.segments]
        self._masks = [] if self.eager else [_RuleMasks(s.rules) for s in bundle.segments]
        self._popularity = [rank_popularity(s.popularity, self.values) for s in bundle.segments]
        if self.eager:
            self._tables = [
                [
                    recommend(held, s.rules, popularity, top_k=top_k, values=self.values)
                    for held in range(1 << n)
                ]
                for s, popularity in zip(bundle.segments, self._popularity, strict=True)
            ]
        self._width = len(bundle.segment_model.features)

    def ranked(
        self, segment: int, held: int, features: Sequence[float] | None, *, top_k: int
    ) -> tuple[Offer, ...]:
        """The bundle's ranker's offers for one customer (`features`: the encoded profile)."""
        row = np.zeros((1, self._width)) if features is None else np.asarray([features], float)
        customers = Customers(row, held_array([held]), np.asarray([segment]))
        return rank_offers(self.scorer, customers, top_k=top_k)[0]

    def offers(
        self, segment: int, held: int, features: Sequence[float] | None = None
    ) -> tuple[Offer, ...]:
        if self.eager:
            return self._tables[segment][held]
        if self.follows_ranker and self.by_profile:
            return self.ranked(segment, held, features, top_k=self.top_k)
        cache = self._caches[segment]
        found = cache.get(held)
        if found is None:
            if len(cache) >= MAX_CACHED:
                cache.clear()
            found = cache[held] = self._offers_of_holdings(segment, held)
        return found

    def _offers_of_holdings(self, segment: int, held: int) -> tuple[Offer, ...]:
        if self.follows_ranker:
            return self.ranked(segment, held, None, top_k=self.top_k)
        rules = self._masks[segment].matching(held)
        return recommend(
            held, rules, self._popularity[segment], top_k=self.top_k, values=self.values
        )
