"""Precomputed offers: a recommendation in the stream is one lookup, not a scan of rules.

For each segment, the offers of every holdings mask are computed once with the pure
`recommend` (so they are the same by construction). With up to `EAGER_ITEMS` products
that is a flat list per segment (2^8 = 256 entries for seed 001's catalog). A larger
catalog (up to 64 products) has too many holdings to precompute: holdings seen for the
first time get what `recommend` gives them (a test holds them equal), from the segment's
rules ranked once and matched at once as arrays (`_RankedRules`); the answer is cached, in
a bounded cache (2^64 holdings could fill any memory).

A bundle that carries a learned ranker is scored with it (rules_store/domain/ranking.py):
cached per (segment, holdings) when its offers depend on nothing else (popular, itemcf),
computed from the profile otherwise (propensity, blend). Scoring one customer at a time
costs a numpy call per product; `offers_many` scores a whole batch of customers in one
call, and `explain` adds the evidence to the offers a batch sends, together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import numpy as np

from rules_store.bundle.model import Bundle
from rules_store.domain.ranking import (
    BlendScorer,
    Customers,
    Inputs,
    PropensityScorer,
    held_array,
    needs_profile,
    offer_of,
    rank_offers,
    scorer_for,
    top_offers,
)
from rules_store.domain.rules import Offer, Rule, rank_popularity, recommend, set_bits

Asked = tuple[int, int, Sequence[float] | None]  # (segment, holdings mask, encoded profile)
EAGER_ITEMS = 12  # 4,096 masks per segment
MAX_CACHED = 200_000  # holdings per segment; the cache starts over when full


class _RankedRules:
    """A segment's (rule, offered item) pairs in `recommend`'s ranking order, and which of
    them each holdings exclude, as bitsets over the pairs.

    For one item, `recommend` keeps the strongest matching rule; its ranking key
    (confidence x the item's value, then strength) orders an item's rules the same way,
    since strength starts with the confidence. So the offers for some holdings are the
    first matching pairs in key order, one per item: no per-customer sorting. A pair
    matches unless an antecedent is not held or a consequent is; per byte of the holdings
    mask, a table gives the pairs that byte excludes, so matching is 8 lookups, not a scan.
    """

    def __init__(self, rules: tuple[Rule, ...], values: Sequence[float], n_items: int) -> None:
        pairs = [(rule, item) for rule in rules for item in set_bits(rule.consequents)]
        pairs.sort(
            key=lambda p: (p[0].confidence * values[p[1]], p[0].strength(), -p[1]), reverse=True
        )
        self.pairs = pairs
        self.all = (1 << len(pairs)) - 1
        needs, gives = [0] * n_items, [0] * n_items  # per item: pairs needing / offering it
        for k, (rule, _) in enumerate(pairs):
            for item in set_bits(rule.antecedents):
                needs[item] |= 1 << k
            for item in set_bits(rule.consequents):
                gives[item] |= 1 << k
        self.tables: list[list[int]] = []  # per byte of the mask: value -> pairs excluded
        for start in range(0, n_items, 8):
            items = range(start, min(start + 8, n_items))
            table = []
            for byte in range(256):
                excluded = 0
                for item in items:
                    excluded |= gives[item] if byte >> (item - start) & 1 else needs[item]
                table.append(excluded)
            self.tables.append(table)

    def offers(
        self, held: int, popularity: Sequence[tuple[int, float]], *, top_k: int
    ) -> tuple[Offer, ...]:
        """`recommend(held, rules, popularity, top_k=top_k, values=values)`."""
        excluded = 0
        for j, table in enumerate(self.tables):
            excluded |= table[held >> (8 * j) & 255]
        hit = self.all & ~excluded
        offers: list[Offer] = []
        seen: set[int] = set()
        while hit and len(offers) < top_k:
            low = hit & -hit
            hit ^= low
            rule, item = self.pairs[low.bit_length() - 1]
            if item not in seen:
                seen.add(item)
                offers.append(Offer(item, rule.confidence, rule, False))
        return tuple(offers) or recommend(held, (), popularity, top_k=top_k)


class Scored(NamedTuple):
    """A batch's offers, per customer asked, and what explaining them reuses."""

    offers: list[tuple[Offer, ...]]
    inputs: Inputs | None  # a profile ranker's batch inputs (else offers carry evidence)


class OfferIndex:
    """`offers(segment, held, features)` for one bundle and one `top_k`."""

    def __init__(self, bundle: Bundle, *, top_k: int = 3) -> None:
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
        self.follows_ranker = bundle.ranker is not None
        # Offers from the profile, scored per call (else cached per segment and holdings).
        self.by_profile = self.follows_ranker and needs_profile(self.scorer)
        self.eager = n <= EAGER_ITEMS and not self.follows_ranker
        self._tables: list[list[tuple[Offer, ...]]] = []
        self._caches: list[dict[int, tuple[Offer, ...]]] = [{} for _ in bundle.segments]
        self._ranked = (
            [] if self.eager else [_RankedRules(s.rules, self.values, n) for s in bundle.segments]
        )
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
        if self.by_profile:  # the scorer's tables are built now, not by the first event
            self.offers_many([(0, 0, None)])

    def ranked(
        self, segment: int, held: int, features: Sequence[float] | None, *, top_k: int
    ) -> tuple[Offer, ...]:
        """The bundle's ranker's offers for one customer (`features`: the encoded profile)."""
        return rank_offers(self.scorer, self._customers([(segment, held, features)]), top_k=top_k)[
            0
        ]

    def _customers(self, asked: Sequence[Asked]) -> Customers:
        zeros = (0.0,) * self._width
        rows = np.array([zeros if f is None else f for _, _, f in asked], dtype=np.float64)
        rows = rows.reshape(len(asked), self._width)  # also when nothing is asked
        return Customers(
            rows, held_array([held for _, held, _ in asked]), np.asarray([s for s, _, _ in asked])
        )

    def offers_many(self, asked: Sequence[Asked]) -> Scored:
        """`offers` for many customers: a profile ranker scores them in one call, and its
        offers come without evidence (`explain` adds it to those sent)."""
        if not self.by_profile:
            offers = [self.offers(segment, held, features) for segment, held, features in asked]
            return Scored(offers, None)
        scorer = cast(PropensityScorer | BlendScorer, self.scorer)  # what `by_profile` means
        inputs = scorer.inputs(self._customers(asked))
        scores = scorer.scores_of(inputs, lacking_only=True)
        top = top_offers(scores, inputs.customers.held, self.top_k).tolist()
        offers = [
            tuple(Offer(item, float(scores[row, item]), None, False) for item in items if item >= 0)
            for row, items in enumerate(top)
        ]
        return Scored(offers, inputs)

    def explain(self, scored: Scored, rows: Sequence[int], offers: Sequence[Offer]) -> list[Offer]:
        """`offers[r]` (from `scored.offers[rows[r]]`) with its evidence, from the inputs the
        batch was scored with."""
        if scored.inputs is None or not offers:
            return list(offers)
        scorer = cast(PropensityScorer | BlendScorer, self.scorer)  # it gave the inputs
        items = np.asarray([offer.item for offer in offers], dtype=np.int64)
        evidence = scorer.explain_of(scored.inputs.take(np.asarray(rows, dtype=np.intp)), items)
        return [
            offer_of(self.scorer, offer.item, offer.score, why)
            for offer, why in zip(offers, evidence, strict=True)
        ]

    def offers(
        self, segment: int, held: int, features: Sequence[float] | None = None
    ) -> tuple[Offer, ...]:
        if self.eager:
            return self._tables[segment][held]
        if self.by_profile:
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
        return self._ranked[segment].offers(held, self._popularity[segment], top_k=self.top_k)
