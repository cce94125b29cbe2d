"""Batch scoring with a trained bundle: cross-selling and product mining (seed 001)."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules_store.bundle.model import Bundle
from rules_store.domain.offers import OfferIndex
from rules_store.domain.ranking import (
    BlendScorer,
    Customers,
    PropensityScorer,
    Scorer,
    evidence_json,
    top_offers,
)
from rules_store.domain.rules import Offer, Rule, format_itemset
from training.encoding import RetailData

CROSS_SELL_COLUMNS = (
    "segment",
    "rank",
    "product",
    "score",
    "confidence",
    "lift",
    "support",
    "rule",
    "fallback",
)


def _rule_text(offer: Offer, items: tuple[str, ...]) -> str:
    if offer.rule is None:
        return ""
    return f"{format_itemset(offer.rule.antecedents, items)} -> {format_itemset(offer.rule.consequents, items)}"


def cross_sell(bundle: Bundle, data: RetailData, *, top_k: int = 3) -> pd.DataFrame:
    """One row per (customer, offer), best offer first; the same offers the stream gives.

    Offers come from the bundle's `OfferIndex` (the stream's lookup), once per distinct
    (segment, holdings) pair, so a million customers cost a lookup each, not a rule scan.
    `data` holds holdings in the bundle's catalog (loaded with the bundle's schema).
    """
    segments = bundle.segment_model.assign_segments(data.features)
    index = OfferIndex(bundle, top_k=top_k)
    if bundle.ranker is not None:
        return ranked_cross_sell(index, data, segments)
    all_mask = bundle.catalog.all_mask
    keys = np.column_stack([segments.astype(np.int64), data.masks.astype(np.int64)])
    unique_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    rows: list[tuple[object, ...]] = []
    for segment, mask in unique_keys.tolist():
        # A 64-product mask is stored as int64: bit 63 reads back as the sign.
        offers = index.offers(segment, mask & all_mask)
        rows.append(
            tuple(
                (
                    rank,
                    bundle.items[o.item],
                    o.score,
                    o.rule.confidence if o.rule else np.nan,
                    o.rule.lift if o.rule else np.nan,
                    o.rule.support if o.rule else np.nan,
                    _rule_text(o, bundle.items),
                    o.fallback,
                )
                for rank, o in enumerate(offers, start=1)
            )
        )
    # Expand: customer i gets the offers of its key, rows start[key] .. start[key] + n - 1.
    per_key = np.array([len(r) for r in rows], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(per_key)[:-1]]).astype(np.int64)
    counts = per_key[inverse]
    customer = np.repeat(np.arange(len(keys)), counts)
    rank_within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    offer_index = np.repeat(start[inverse], counts) + rank_within
    flat = [offer for r in rows for offer in r]
    offers = (
        pd.DataFrame(flat, columns=list(CROSS_SELL_COLUMNS[1:]))
        .iloc[offer_index]
        .reset_index(drop=True)
    )
    offers.insert(0, "segment", segments[customer])
    offers.insert(0, bundle.schema.id_column, data.ids[customer])
    return offers


CHUNK = 131_072


def ranked_cross_sell(
    index: OfferIndex, data: RetailData, segments: npt.NDArray[np.int64]
) -> pd.DataFrame:
    """Cross-selling with the bundle's ranker, scored a chunk of customers at a time; each
    offer's evidence (`batch_evidence`) in the `evidence` column."""
    bundle, scorer, top_k = index.bundle, index.scorer, index.top_k
    customers = Customers(data.features, data.masks, segments)
    frames = []
    for start in range(0, len(customers), CHUNK):
        chunk = customers.take(np.arange(start, min(start + CHUNK, len(customers))))
        scores = scorer.scores(chunk)
        top = top_offers(scores, chunk.held, top_k)
        row, rank = np.nonzero(top >= 0)
        item = top[row, rank]
        frames.append(
            pd.DataFrame(
                {
                    "row": row + start,
                    "rank": rank + 1,
                    "item": item,
                    "score": scores[row, item],
                }
            )
        )
    offers = pd.concat(frames, ignore_index=True)
    rows, items = offers["row"].to_numpy(), offers["item"].to_numpy()
    # Evidence depends on (segment, holdings, item) only: explained once per distinct key.
    held_codes, held_of = np.unique(data.masks[rows], return_inverse=True)
    n_segments, n_items = len(bundle.segments), len(bundle.items)
    key = (held_of.reshape(-1) * n_segments + segments[rows]) * n_items + items
    keys, key_of = np.unique(key, return_inverse=True)
    explain = BatchEvidence(scorer, bundle.items)
    explained = [
        explain.text(
            int(k // n_items % n_segments),
            int(held_codes[k // n_items // n_segments]),
            int(k % n_items),
        )
        for k in keys.tolist()
    ]
    rules = [rule for _, rule in explained]
    key_of = key_of.reshape(-1)

    def per_offer(values: list[object]) -> pd.Categorical:
        # One category per distinct text: no string is built per offer.
        codes, categories = pd.factorize(pd.Series(values, dtype=object))
        return pd.Categorical.from_codes(codes[key_of], categories=categories)

    def figure(value: Callable[[Rule], float]) -> npt.NDArray[np.float64]:
        return np.asarray([np.nan if r is None else value(r) for r in rules], dtype=float)[key_of]

    return pd.DataFrame(
        {
            bundle.schema.id_column: data.ids[rows],
            "segment": segments[rows],
            "rank": offers["rank"].to_numpy(),
            "product": pd.Categorical.from_codes(items, categories=list(bundle.items)),
            "score": offers["score"].to_numpy(),
            "confidence": figure(lambda r: r.confidence),
            "lift": figure(lambda r: r.lift),
            "support": figure(lambda r: r.support),
            "rule": per_offer([_rule_text(Offer(0, 0.0, r, False), bundle.items) for r in rules]),
            "fallback": False,
            "ranker": scorer.name,
            "evidence": per_offer([text for text, _ in explained]),
        }
    )


class BatchEvidence:
    """An offer's evidence as text, from what does not vary within (segment, holdings):
    the supporting rule (rules, blend), the held products most similar to it (itemcf), the
    segment's rate (popular). Propensity's probability is the offer's score; its top
    inputs are given per customer by /predict, /customers/{id} and alerts, since
    computing them costs one more model evaluation per input and offer."""

    def __init__(self, scorer: Scorer, items: tuple[str, ...]) -> None:
        self.scorer, self.items = scorer, items
        self._cache: dict[tuple[int, int, int], tuple[str, Rule | None]] = {}

    def text(self, segment: int, held: int, item: int) -> tuple[str, Rule | None]:
        key = (segment, held, item)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._explain(segment, held, item)
        return found

    def _explain(self, segment: int, held: int, item: int) -> tuple[str, Rule | None]:
        scorer = self.scorer
        if isinstance(scorer, PropensityScorer | BlendScorer):
            spec = scorer.spec if isinstance(scorer, PropensityScorer) else scorer.propensity.spec
            model = spec.models[item]
            rule = (
                scorer.rules.rule_for(segment, held, item)
                if isinstance(scorer, BlendScorer)
                else None
            )
            kind = model.kind if model is not None else "holding rate"
            return json.dumps({"ranker": scorer.name, "probability_by": kind}), rule
        one = Customers(np.zeros((1, 0)), np.asarray([held]), np.asarray([segment]))
        evidence = evidence_json(scorer.evidence(one, 0, item), self.items)
        rule = evidence.pop("rule", None)
        text = json.dumps({"ranker": scorer.name, **evidence}, ensure_ascii=False)
        return text, rule if isinstance(rule, Rule) else None


def product_mining(
    bundle: Bundle, offers: pd.DataFrame, *, per_product: int | None = None
) -> pd.DataFrame:
    """For each product in catalog order, the customers offered it: rule-based offers first
    (a fallback's score is a holding rate, not a confidence), best score first, then in
    input order."""
    catalog = offers["product"].map({name: i for i, name in enumerate(bundle.items)}).to_numpy()
    order = np.lexsort(
        (
            np.arange(len(offers)),
            -offers["score"].to_numpy(),
            offers["fallback"].to_numpy(),
            catalog,
        )
    )
    ranked = offers.iloc[order].reset_index(drop=True)
    ranked["rank"] = ranked.groupby("product", sort=False).cumcount() + 1
    if per_product is not None:
        ranked = ranked[ranked["rank"] <= per_product]
    # An empty rule marks a fallback offer.
    columns = ["product", "rank", bundle.schema.id_column, "segment", "score", "rule"]
    return ranked[columns].reset_index(drop=True)
