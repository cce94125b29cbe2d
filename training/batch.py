"""Batch scoring with a trained bundle: cross-selling and product mining (seed 001)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rules_store.bundle.model import Bundle
from rules_store.domain.offers import OfferIndex
from rules_store.domain.rules import Offer, format_itemset
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
