"""Precomputed offers: a recommendation in the stream is one lookup, not a scan of rules.

For each segment, the offers of every holdings mask are computed once with the pure
`recommend` (so they are the same by construction). With up to `EAGER_ITEMS` products
that is a flat list per segment (2^8 = 256 entries for seed 001's catalog); a larger
catalog (up to 64 products) fills a per-segment cache on first use instead.
"""

from __future__ import annotations

from rules_store.bundle.model import Bundle
from rules_store.domain.rules import Offer, recommend

EAGER_ITEMS = 12  # 4,096 masks per segment


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
        if self.eager:
            self._tables = [
                [
                    recommend(held, s.rules, s.popularity, top_k=top_k, values=self.values)
                    for held in range(1 << n)
                ]
                for s in bundle.segments
            ]

    def offers(self, segment: int, held: int) -> tuple[Offer, ...]:
        if self.eager:
            return self._tables[segment][held]
        cache = self._caches[segment]
        found = cache.get(held)
        if found is None:
            s = self.bundle.segments[segment]
            found = cache[held] = recommend(
                held, s.rules, s.popularity, top_k=self.top_k, values=self.values
            )
        return found
