"""Training on generated customers: planted rules found where they were planted, same seed same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.local_store import load_bundle
from tests.default_catalog import PRODUCTS, products_to_mask
from training.batch import cross_sell, product_mining
from training.generate import PLANTED_RULES, generate_retail, write_retail
from training.mining import mine_table_mlxtend
from training.outputs import save_run_bundle, write_training_outputs
from training.retail import TrainParams, TrainResult, train_retail

CUSTOMERS = 20_000


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = generate_retail(CUSTOMERS, seed=11)
    path = tmp_path_factory.mktemp("retail") / "customers.del"
    write_retail(frame, path, "del")
    return path, frame


@pytest.fixture(scope="module")
def trained(snapshot: tuple[Path, pd.DataFrame]) -> TrainResult:
    return train_retail(snapshot[0], RETAIL_SCHEMA, TrainParams(segments=4, seed=7))


def _majority_persona(result: TrainResult, frame: pd.DataFrame) -> dict[int, str]:
    persona = frame.set_index("客户编号")["persona"]
    table = pd.crosstab(result.segmentation.labels, persona.loc[result.data.ids].to_numpy())
    return {int(segment): str(row.idxmax()) for segment, row in table.iterrows()}


def test_each_planted_rule_is_found_in_its_personas_segment_only(
    trained: TrainResult, snapshot: tuple[Path, pd.DataFrame]
) -> None:
    majority = _majority_persona(trained, snapshot[1])
    assert sorted(majority.values()) == sorted({p.persona for p in PLANTED_RULES})
    for planted in PLANTED_RULES:
        antecedents = products_to_mask(planted.antecedents)
        consequent = products_to_mask([planted.consequent])
        where = [
            (s.segment, r)
            for s in trained.bundle.segments
            for r in s.rules
            if r.antecedents == antecedents and r.consequents == consequent
        ]
        assert [majority[segment] for segment, _ in where] == [planted.persona], planted
        rule = where[0][1]
        assert rule.confidence == pytest.approx(planted.confidence, abs=0.08)
        assert rule.lift > 1.3


def test_rules_per_segment_equal_mlxtend_on_the_same_customers(trained: TrainResult) -> None:
    params = trained.bundle.params
    for s in trained.bundle.segments:
        members = trained.data.masks[trained.segmentation.labels == s.segment]
        table = pd.DataFrame(
            {name: (members >> i & 1).astype(bool) for i, name in enumerate(PRODUCTS)}
        )
        reference = mine_table_mlxtend(
            table,
            min_support=params["min_support"],
            min_confidence=params["min_confidence"],
            min_lift=params["min_lift"],
        )
        assert list(s.rules) == reference


def test_the_same_seed_gives_identical_output_files(
    snapshot: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    runs = []
    for name in ("a", "b"):
        result = train_retail(snapshot[0], RETAIL_SCHEMA, TrainParams(segments=None, seed=3))
        write_training_outputs(
            tmp_path / name,
            result.bundle,
            result.data.ids,
            result.segmentation.labels,
            result.values,
        )
        save_run_bundle(tmp_path / name, result.bundle)
        runs.append(tmp_path / name)
    for file in ("assignments.csv", "rules.csv", "rules.json"):
        assert (runs[0] / file).read_bytes() == (runs[1] / file).read_bytes(), file
    a, b = (json.loads((run / "model" / "bundle.json").read_text(encoding="utf-8")) for run in runs)
    a.pop("created_at"), b.pop("created_at")
    assert a == b


def test_seed_format_json_keeps_lift_equal_to_confidence_over_consequent_support(
    trained: TrainResult, tmp_path: Path
) -> None:
    write_training_outputs(
        tmp_path, trained.bundle, trained.data.ids, trained.segmentation.labels, trained.values
    )
    rules = json.loads((tmp_path / "rules.json").read_text(encoding="utf-8"))
    assert set(rules) == {str(s.segment) for s in trained.bundle.segments}
    for entries in rules.values():
        for antecedents, (
            consequents,
            support,
            consequent_support,
            confidence,
            lift,
        ) in entries.items():
            assert antecedents.startswith("['")
            assert set(consequents) <= set(PRODUCTS)
            assert 0 < support <= 1
            assert lift == pytest.approx(confidence / consequent_support, rel=1e-12)


def test_saved_model_gives_the_same_offers_as_the_trained_bundle(
    trained: TrainResult, tmp_path: Path
) -> None:
    write_training_outputs(
        tmp_path, trained.bundle, trained.data.ids, trained.segmentation.labels, trained.values
    )
    save_run_bundle(tmp_path, trained.bundle)
    loaded = load_bundle(tmp_path)
    assert loaded == trained.bundle
    offers = cross_sell(loaded, trained.data)
    assert offers.groupby("客户编号").size().max() <= 3
    segments = loaded.segment_model.assign_segments(trained.data.features)
    by_customer = dict(list(offers.groupby("客户编号", sort=False)))
    for i in range(0, len(trained.data.ids), 37):
        expected = loaded.recommend(int(trained.data.masks[i]), int(segments[i]))
        got = by_customer.get(trained.data.ids[i])
        assert len(expected) == (0 if got is None else len(got))
        if got is None:
            continue
        assert got["rank"].tolist() == list(range(1, len(expected) + 1))
        assert set(got["segment"]) == {segments[i]}
        assert got["product"].tolist() == [PRODUCTS[o.item] for o in expected]
        assert got["score"].tolist() == [o.score for o in expected]
        assert got["fallback"].tolist() == [o.fallback for o in expected]
        assert all(not trained.data.masks[i] >> o.item & 1 for o in expected)  # never held


def test_product_mining_ranks_each_products_targets_by_score(trained: TrainResult) -> None:
    offers = cross_sell(trained.bundle, trained.data)
    targets = product_mining(trained.bundle, offers, per_product=50)
    assert targets.groupby("product").size().max() <= 50
    everyone = product_mining(trained.bundle, offers)
    for _, group in everyone.groupby("product"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        by_rule = group["rule"] != ""
        assert not (
            ~by_rule.to_numpy()[:-1] & by_rule.to_numpy()[1:]
        ).any()  # rules before fallbacks
        for _, part in group.groupby(by_rule):
            assert np.all(np.diff(part["score"].to_numpy()) <= 0)
