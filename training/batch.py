"""Batch scoring with a trained bundle: cross-selling and product mining (seed 001)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rules_store.bundle.model import Bundle
from rules_store.domain.catalog import PRODUCT_BALANCES, PRODUCTS
from rules_store.domain.offers import OfferIndex
from rules_store.domain.rules import Offer, format_itemset
from rules_store.errors import XsellError
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


class CatalogMismatchError(XsellError, ValueError):
    """A bundle built for another product catalog than the one this code derives holdings for."""


def check_catalog(bundle: Bundle) -> None:
    """Holdings are derived with this code's catalog; a bundle must use the same one."""
    if bundle.items != PRODUCTS or (
        bundle.item_balances and bundle.item_balances != PRODUCT_BALANCES
    ):
        msg = (
            f"the bundle's products {list(bundle.items)} (from balances {bundle.item_balances}) "
            f"differ from this version's catalog {list(PRODUCTS)}; retrain with this version"
        )
        raise CatalogMismatchError(msg)


def cross_sell(bundle: Bundle, data: RetailData, *, top_k: int = 3) -> pd.DataFrame:
    """One row per (customer, offer), best offer first; the same offers the stream gives.

    Offers come from the bundle's `OfferIndex` (the stream's lookup), once per distinct
    (segment, holdings) pair, so a million customers cost a lookup each, not a rule scan.
    """
    check_catalog(bundle)
    segments = bundle.segment_model.assign_segments(data.features)
    index = OfferIndex(bundle, top_k=top_k)
    n_items = len(bundle.items)
    keys = segments * (1 << n_items) + data.masks
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    rows: list[tuple[object, ...]] = []
    for key in unique_keys.tolist():
        offers = index.offers(key >> n_items, key & ((1 << n_items) - 1))
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
