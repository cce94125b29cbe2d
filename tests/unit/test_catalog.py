"""The catalog as data: the schema file's products, their checks, and the bundle carrying them."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.bundle.codec import BundleFormatError, bundle_from_dict, bundle_to_dict
from rules_store.bundle.codec import bundle_to_json as encode
from rules_store.bundle.diff import diff_bundles
from rules_store.bundle.model import Bundle, SegmentRules
from rules_store.bundle.schema import RETAIL_SCHEMA, SchemaError, load_schema, schema_from_dict
from rules_store.domain.catalog import MAX_PRODUCTS, Catalog, Product
from rules_store.domain.rules import Rule
from rules_store.domain.segments import SegmentModel
from tests.catalogs import catalog_schema
from training.batch import cross_sell
from training.generate import generate_retail
from training.retail import TrainParams, train_retail


def _schema_doc(products: list[dict[str, Any]]) -> dict[str, Any]:
    doc = RETAIL_SCHEMA.to_dict()
    return doc | {"products": products}


def test_the_default_schema_file_holds_seed_001s_eight_products() -> None:
    catalog = RETAIL_SCHEMA.products
    assert catalog.names == (
        "存款",
        "保险",
        "基金和积利宝",
        "积存金",
        "理财",
        "国债",
        "代销资管产品",
        "贷款和信用卡",
    )
    assert catalog.products[2].balances == ("基金余额", "积利宝余额")
    assert catalog.products[7].balances == ("贷款余额", "信用卡分期余额")
    assert "贷款和信用卡" not in catalog.financial_assets
    assert len(catalog.financial_assets) == 7
    assert set(catalog.balance_columns) == set(RETAIL_SCHEMA.balance_columns)
    assert catalog.values == (1.0,) * 8


def test_a_schema_file_without_products_gets_the_default_catalog() -> None:
    doc = RETAIL_SCHEMA.to_dict()
    del doc["products"]
    assert schema_from_dict(doc).products == RETAIL_SCHEMA.products


@pytest.mark.parametrize(
    ("products", "expected"),
    [
        (
            [{"name": "a", "balances": ["存款余额"], "financial_asset": True, "colour": "red"}],
            r"product #0 \('a'\): unknown key\(s\) \['colour'\]",
        ),
        (
            [{"name": "a", "balances": ["no_such"], "financial_asset": True}],
            "product 'a' has balance column 'no_such', which is not a field of the schema",
        ),
        (
            [{"name": "a", "balances": ["年龄"], "financial_asset": True}],
            "balance column '年龄', a field of kind 'number'; expected kind 'balance'",
        ),
        (
            [
                {"name": "a", "balances": ["存款余额"], "financial_asset": True},
                {"name": "a", "balances": ["保险余额"], "financial_asset": True},
            ],
            r"duplicate product\(s\) \['a'\]",
        ),
        (
            [{"name": "a", "balances": ["存款余额"]}],
            r"product #0 \('a'\): 'financial_asset' must be true or false, got None",
        ),
        (
            [{"name": "a", "balances": [], "financial_asset": True}],
            "'balances' must be a non-empty list",
        ),
        (
            [{"name": "a", "balances": ["存款余额"], "financial_asset": True, "value": 0}],
            "'value' must be a positive number, got 0",
        ),
        ([], "a catalog needs at least one product"),
    ],
)
def test_a_bad_product_is_refused_naming_it(
    tmp_path: Path, products: list[dict[str, Any]], expected: str
) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(_schema_doc(products), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SchemaError, match=expected) as caught:
        load_schema(path)
    assert str(path) in str(caught.value)


def test_more_than_64_products_are_refused_with_the_limit() -> None:
    names = [f"p{i}" for i in range(MAX_PRODUCTS + 1)]
    doc = catalog_schema(names[:1]).to_dict()
    doc["fields"] += [{"name": f"{n}_balance", "kind": "balance"} for n in names[1:]]
    doc["products"] = [
        {"name": n, "balances": [f"{n}_balance"], "financial_asset": True} for n in names
    ]
    with pytest.raises(SchemaError, match="65 products; at most 64 are supported"):
        schema_from_dict(doc)
    doc["products"] = doc["products"][:MAX_PRODUCTS]
    assert len(schema_from_dict(doc).products.names) == 64


@given(
    held=st.lists(st.booleans(), min_size=MAX_PRODUCTS, max_size=MAX_PRODUCTS),
    rows=st.integers(1, 5),
)
def test_64_product_masks_agree_between_one_customer_and_columns(
    held: list[bool], rows: int
) -> None:
    catalog = catalog_schema([f"p{i}" for i in range(MAX_PRODUCTS)]).products
    balances = {f"p{i}_balance": 5.0 if h else 0.0 for i, h in enumerate(held)}
    one = catalog.holdings_from_balances(balances)
    assert catalog.products_of(one) == tuple(f"p{i}" for i, h in enumerate(held) if h)
    columns = {k: np.full(rows, v) for k, v in balances.items()}
    many = catalog.holdings_from_balances(columns)
    assert [int(m) & catalog.all_mask for m in many] == [one] * rows
    assert catalog.held({f"p{i}": 5.0 for i, h in enumerate(held) if h}) == one


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10)


@st.composite
def _bundles(draw: st.DrawFn) -> Bundle:
    names = draw(st.lists(_names.filter(str.strip), min_size=1, max_size=MAX_PRODUCTS, unique=True))
    n = len(names)
    schema = catalog_schema(names)
    products = tuple(
        Product(
            p.name,
            p.balances,
            financial_asset=draw(st.booleans()),
            value=draw(st.floats(0.01, 100.0)),
        )
        for p in schema.products.products
    )
    schema = schema_from_dict(
        schema.to_dict()
        | {
            "products": [
                {
                    "name": p.name,
                    "balances": list(p.balances),
                    "financial_asset": p.financial_asset,
                    "value": p.value,
                }
                for p in products
            ]
        }
    )
    rules = []
    if n >= 2:
        for _ in range(draw(st.integers(0, 4))):
            a, c = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            rules.append(Rule(1 << a, 1 << c, 0.5, 0.4, 0.3, 0.6, 1.5, 0.1, 1.5))
    popularity = tuple((i, 0.5) for i in draw(st.permutations(range(n))))
    k = len(schema.segment_fields)
    model = SegmentModel(
        tuple(f.name for f in schema.segment_fields), np.zeros(k), np.ones(k), np.zeros((1, k))
    )
    return Bundle(schema, "stop", model, (SegmentRules(0, 10, tuple(rules), popularity),))


@settings(max_examples=40, deadline=None)
@given(bundle=_bundles())
def test_any_valid_catalog_of_1_to_64_products_round_trips_through_the_bundle_codec(
    bundle: Bundle,
) -> None:
    back = bundle_from_dict(json.loads(encode(bundle)))
    assert back == bundle
    assert back.catalog == bundle.catalog  # names, balances, flags and weights
    assert back.items == bundle.catalog.names


def _old_document(bundle: Bundle) -> dict[str, Any]:
    """The bundle as releases before catalogs wrote it: no products, item_balances."""
    doc = copy.deepcopy(bundle_to_dict(bundle))
    del doc["schema"]["products"]
    doc["item_balances"] = {p.name: list(p.balances) for p in bundle.catalog.products}
    return doc


def _small_bundle(schema_names: tuple[str, ...] | None = None) -> Bundle:
    schema = RETAIL_SCHEMA if schema_names is None else catalog_schema(schema_names)
    k = len(schema.segment_fields)
    model = SegmentModel(
        tuple(f.name for f in schema.segment_fields), np.zeros(k), np.ones(k), np.zeros((1, k))
    )
    popularity = tuple((i, 0.5) for i in range(len(schema.products.names)))
    return Bundle(schema, "stop", model, (SegmentRules(0, 10, (), popularity),))


def test_a_bundle_written_before_catalogs_loads_with_the_default_catalog() -> None:
    old = _old_document(_small_bundle())
    assert bundle_from_dict(old).catalog == RETAIL_SCHEMA.products


def test_a_bundle_written_before_catalogs_with_other_items_is_refused() -> None:
    old = _old_document(_small_bundle())
    old["items"] = old["items"][:4]
    with pytest.raises(BundleFormatError, match=r"items \['存款', .*\] differ .* retrain"):
        bundle_from_dict(old)
    other = _old_document(_small_bundle(("a", "b", "c")))
    with pytest.raises(BundleFormatError, match=r"written before catalogs .* retrain"):
        bundle_from_dict(other)


def test_rules_outside_a_smaller_catalog_are_refused() -> None:
    doc = bundle_to_dict(_small_bundle(("a", "b", "c")))
    doc["segments"][0]["rules"] = [[1, 8, 0.5, 0.4, 0.3, 0.6, 1.5, 0.1, 1.5]]
    with pytest.raises(BundleFormatError, match="outside the 3-item catalog"):
        bundle_from_dict(doc)


def test_value_weights_rank_offers_of_equal_evidence() -> None:
    plain = _small_bundle(("a", "b", "c"))
    assert [o.item for o in plain.recommend(0, 0)] == [0, 1, 2]  # popularity order
    doc = bundle_to_dict(plain)
    doc["schema"]["products"][2]["value"] = 3.0
    weighted = bundle_from_dict(doc)
    assert [o.item for o in weighted.recommend(0, 0)] == [2, 0, 1]
    assert [o.score for o in weighted.recommend(0, 0)] == [0.5, 0.5, 0.5]  # evidence unweighted


def test_catalog_lookups_name_the_unknown_product() -> None:
    catalog = Catalog((Product("a", ("a_bal",), financial_asset=True),))
    with pytest.raises(KeyError, match=r"unknown product 'z'; expected one of \['a'\]"):
        catalog.mask(["z"])


def test_a_64_product_catalog_trains_and_scores_in_batch_like_the_bundle(tmp_path: Path) -> None:
    names = [f"p{i:02d}" for i in range(MAX_PRODUCTS)]
    schema = catalog_schema(names)
    rng = np.random.default_rng(3)
    frame = generate_retail(800, seed=3, dirty_share=0.0)[
        [f.name for f in schema.fields if f.kind != "balance"]
    ]
    held = rng.random((len(frame), MAX_PRODUCTS)) < 0.08
    held[:, 63] |= held[:, 0]  # bit 63, the int64 sign bit, often held
    for i, name in enumerate(names):
        frame[f"{name}_balance"] = np.where(held[:, i], 100.0, 0.0)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    result = train_retail(path, schema, TrainParams(segments=2, min_support=0.05))
    bundle = result.bundle
    assert bundle.items == tuple(names)
    assert any(r.consequents >> 63 or r.antecedents >> 63 for s in bundle.segments for r in s.rules)
    offers = cross_sell(bundle, result.data)
    best = offers[offers["rank"] == 1].set_index("客户编号")
    for i, row in enumerate(frame.head(200).to_dict("records")):
        mask = bundle.catalog.holdings_from_balances(row)
        assert mask == bundle.catalog.mask(n for n, h in zip(names, held[i], strict=True) if h)
        segment = int(result.segmentation.labels[i])
        expected = bundle.recommend(mask, segment)
        if expected:
            assert best.loc[row["客户编号"], "product"] == bundle.items[expected[0].item]


def test_bundles_with_other_catalogs_diff_by_product_names() -> None:
    def bundle(names: tuple[str, ...], rules: list[tuple[str, str, float]]) -> Bundle:
        plain = _small_bundle(names)
        mask = plain.catalog.mask
        segment = replace(
            plain.segments[0],
            rules=tuple(
                Rule(mask([a]), mask([c]), 0.5, 0.4, 0.3, conf, 1.5, 0.1, 1.5)
                for a, c, conf in rules
            ),
        )
        return replace(plain, segments=(segment,))

    old = bundle(("a", "b", "c"), [("a", "b", 0.6), ("c", "a", 0.5), ("b", "c", 0.7)])
    new = bundle(("d", "c", "b", "a"), [("a", "b", 0.6), ("b", "c", 0.8), ("d", "a", 0.9)])
    (d,) = diff_bundles(old, new)
    names = new.catalog.products_of
    assert [(names(r.antecedents), names(r.consequents)) for r in d.added] == [(("d",), ("a",))]
    assert [old.catalog.products_of(r.antecedents) for r in d.removed] == [("c",)]
    assert [(b.confidence, a.confidence) for b, a in d.changed] == [(0.7, 0.8)]
