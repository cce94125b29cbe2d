"""Precomputed offers: a recommendation in the stream is one lookup, not a scan of rules.

For each segment, the offers of every holdings mask are computed once with the pure
`recommend` (so they are the same by construction). With up to `EAGER_ITEMS` products
that is a flat list per segment (2^8 = 256 entries for seed 001's catalog). A larger
catalog (up to 64 products) has too many holdings to precompute: holdings seen for the
first time keep only the rules that match them, found at once over the segment's rule
masks as arrays, and `recommend` ranks those few; the answer is cached, in a bounded
cache (2^64 holdings could fill any memory).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rules_store.bundle.model import Bundle
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
    """`offers(segment, held)` for one bundle and one `top_k`."""

    def __init__(self, bundle: Bundle, *, top_k: int = 3) -> None:
        self.bundle = bundle
        self.top_k = top_k
        n = len(bundle.items)
        self.values = bundle.catalog.values
        self.eager = n <= EAGER_ITEMS
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

    def offers(self, segment: int, held: int) -> tuple[Offer, ...]:
        if self.eager:
            return self._tables[segment][held]
        cache = self._caches[segment]
        found = cache.get(held)
        if found is None:
            if len(cache) >= MAX_CACHED:
                cache.clear()
            rules = self._masks[segment].matching(held)
            found = cache[held] = recommend(
                held, rules, self._popularity[segment], top_k=self.top_k, values=self.values
            )
        return found
