"""The precomputed offer index gives exactly what the pure recommendation logic gives."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.bundle.model import Bundle, SegmentRules
from rules_store.domain.catalog import Catalog
from rules_store.domain.offers import EAGER_ITEMS, OfferIndex
from rules_store.domain.rules import Rule, recommend
from rules_store.domain.segments import SegmentModel
from tests.catalogs import catalog_schema


def _bundle(n_items: int, seed: int, segments: int = 3) -> Bundle:
    rng = np.random.default_rng(seed)
    full = (1 << n_items) - 1
    rule_sets = []
    for s in range(segments):
        rules = []
        for _ in range(40):
            antecedents = int(rng.integers(1, full))
            consequents = int(rng.integers(1, full + 1)) & ~antecedents
            if consequents:
                confidence, lift, support = rng.random(3)
                rules.append(
                    Rule(
                        antecedents,
                        consequents,
                        0.5,
                        0.5,
                        float(support),
                        float(confidence),
                        float(1 + lift),
                        0.0,
                        1.0,
                    )
                )
        popularity = tuple(
            (i, float(r)) for i, r in sorted(enumerate(rng.random(n_items)), key=lambda x: -x[1])
        )
        rule_sets.append(
            SegmentRules(s, 100, tuple(sorted(rules, key=Rule.strength, reverse=True)), popularity)
        )
    model = SegmentModel(
        ("x",), np.zeros(1), np.ones(1), np.arange(segments, dtype=float).reshape(-1, 1)
    )
    schema = catalog_schema([f"p{i}" for i in range(n_items)])
    return Bundle(schema, "stop", model, tuple(rule_sets))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), top_k=st.integers(1, 4), data=st.data())
def test_eager_index_equals_recommend_for_random_holdings(
    seed: int, top_k: int, data: st.DataObject
) -> None:
    bundle = _bundle(8, seed)
    index = OfferIndex(bundle, top_k=top_k)
    assert index.eager
    for _ in range(30):
        segment = data.draw(st.integers(0, 2))
        held = data.draw(st.integers(0, 255))
        s = bundle.segments[segment]
        assert index.offers(segment, held) == recommend(held, s.rules, s.popularity, top_k=top_k)


def test_a_catalog_too_large_to_precompute_is_filled_lazily_with_the_same_answers() -> None:
    bundle = _bundle(EAGER_ITEMS + 4, seed=3)
    index = OfferIndex(bundle)
    assert not index.eager
    rng = np.random.default_rng(0)
    for held in rng.integers(0, 1 << (EAGER_ITEMS + 4), 300).tolist():
        s = bundle.segments[held % 3]
        first = index.offers(s.segment, held)
        assert first == recommend(held, s.rules, s.popularity)
        assert index.offers(s.segment, held) is first  # cached


def test_a_bundle_and_its_index_agree_for_every_segment_and_mask() -> None:
    bundle = _bundle(6, seed=9)
    index = OfferIndex(bundle, top_k=2)
    for s in bundle.segments:
        for held in range(1 << 6):
            assert index.offers(s.segment, held) == bundle.recommend(held, s.segment, top_k=2)


def test_a_64_product_index_with_value_weights_agrees_with_the_bundles_full_scan() -> None:
    rng = random.Random(5)
    schema = catalog_schema([f"p{i}" for i in range(64)])
    products = tuple(
        replace(p, value=rng.choice([0.5, 1.0, 2.0])) for p in schema.products.products
    )
    schema = replace(schema, catalog=Catalog(products))
    segments = []
    for s in range(2):
        rules = []
        for _ in range(300):
            a, b, c = rng.sample(range(64), 3)
            antecedents = 1 << a | (1 << b if rng.random() < 0.5 else 0)
            consequents = 1 << c | (1 << rng.randrange(64) if rng.random() < 0.2 else 0)
            consequents &= ~antecedents
            conf = rng.random()
            rules.append(Rule(antecedents, consequents, 0.5, 0.5, 0.1, conf, 1.2, 0.0, 1.0))
        rules.sort(key=Rule.strength, reverse=True)
        popularity = tuple((i, rng.random()) for i in rng.sample(range(64), 64))
        popularity = tuple(sorted(popularity, key=lambda ir: -ir[1]))
        segments.append(SegmentRules(s, 100, tuple(rules), popularity))
    k = len(schema.segment_fields)
    model = SegmentModel(
        tuple(f.name for f in schema.segment_fields), np.zeros(k), np.ones(k), np.zeros((1, k))
    )
    bundle = Bundle(schema, "stop", model, tuple(segments))
    index = OfferIndex(bundle)
    for _ in range(500):
        held = rng.getrandbits(64) & rng.getrandbits(64) & rng.getrandbits(64)  # ~8 held
        segment = rng.randrange(2)
        assert index.offers(segment, held) == bundle.recommend(held, segment)
