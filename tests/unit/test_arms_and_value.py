"""Champion/challenger split and rates; the customer value percentile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.bundle.codec import bundle_from_dict, bundle_to_json
from rules_store.bundle.schema import RETAIL_SCHEMA, SchemaError, schema_from_dict
from rules_store.bundle.value_codec import value_model_from_dict, value_model_to_dict
from rules_store.domain.arms import acceptance_rate, assign_arm, uplift
from rules_store.domain.customer_value import ValueModel, customer_inputs, quantile_cuts
from rules_store.domain.holdings import CustomerState, apply_snapshot
from training.customer_value import fit_value_model, values_of
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail


def test_the_challenger_gets_its_share_and_a_customer_keeps_their_arm() -> None:
    ids = [f"C{i:06d}" for i in range(20_000)]
    arms = [assign_arm(c, 0.2) for c in ids]
    assert abs(arms.count("challenger") / len(ids) - 0.2) < 0.01
    assert arms == [assign_arm(c, 0.2) for c in ids]
    # A larger share only moves champions over: nobody leaves the challenger.
    assert all(
        assign_arm(c, 0.3) == "challenger"
        for c, a in zip(ids, arms, strict=False)
        if a == "challenger"
    )


def test_the_interval_covers_the_rate_and_uplift_compares_arms() -> None:
    small, large = acceptance_rate(3, 10), acceptance_rate(300, 1000)
    assert small.low < large.low < 0.3 < large.high < small.high
    assert uplift(acceptance_rate(36, 100), acceptance_rate(30, 100)) == 0.19999999999999996
    assert uplift(acceptance_rate(3, 10), acceptance_rate(0, 0)) is None


def _columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "financial_assets": rng.lognormal(10, 2, n),
        "products_held": rng.integers(0, 8, n).astype(float),
        "tenure": rng.integers(0, 30, n).astype(float),
        "activity": rng.poisson(3, n).astype(float),
    }


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32 - 1))
def test_the_stream_s_value_equals_training_s(n: int, seed: int) -> None:
    columns = _columns(n, seed)
    model, values = fit_value_model(
        columns, tenure_field="开户年限", activity_field="签约消费渠道个数"
    )
    for i in range(min(n, 50)):
        assert model.value({k: float(v[i]) for k, v in columns.items()}) == values[i]


def test_more_of_every_component_is_worth_more_and_the_top_is_100() -> None:
    columns = _columns(5000, 1)
    model, values = fit_value_model(columns, tenure_field="t", activity_field="a")
    assert values.max() == 100.0
    assert 0 < values.min() < 5
    low = {"financial_assets": 100.0, "products_held": 1.0, "tenure": 1.0, "activity": 0.0}
    high = {"financial_assets": 1e6, "products_held": 5.0, "tenure": 20.0, "activity": 9.0}
    assert model.value(low) < model.value(high)
    # Weights: assets count most. Richer alone beats longer tenure alone.
    rich = low | {"financial_assets": 1e6}
    loyal = low | {"tenure": 29.0}
    assert model.value(rich) > model.value(loyal)


def test_a_missing_component_drops_out_and_the_rest_are_rescaled() -> None:
    columns = _columns(100, 2)
    del columns["tenure"]
    model, _ = fit_value_model(columns, tenure_field=None, activity_field="a")
    assert set(model.weights) == {"financial_assets", "products_held", "activity"}
    assert abs(sum(model.weights.values()) - 1) < 1e-12
    assert isinstance(model, ValueModel)
    assert quantile_cuts([]) == ()


def test_a_trained_bundle_values_a_snapshot_row_in_the_stream_as_training_did(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.del"
    frame = generate_retail(1_500, seed=8)
    write_retail(frame, path, "del")
    trained = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3))
    bundle = bundle_from_dict(json.loads(bundle_to_json(trained.bundle)))  # as stored
    model = bundle.value_model
    assert model is not None
    assert (model.tenure_field, model.activity_field) == ("开户年限", "签约消费渠道个数")
    assert trained.values.min() >= 0
    assert trained.values.max() == 100.0
    names = bundle.segment_model.features
    by_id = {str(c): float(v) for c, v in zip(trained.data.ids, trained.values, strict=True)}
    for row in frame.head(60).to_dict("records"):
        state = apply_snapshot(
            CustomerState(str(row["客户编号"])),
            row,
            bundle.schema,
            unknown="code",
            source="snapshot:0",
            offset=1,
        )
        assert state is not None
        assert state.features is not None
        inputs = customer_inputs(
            model,
            financial_assets=state.financial_assets_in(bundle.catalog),
            held=state.held_in(bundle.catalog),
            profile=dict(zip(names, state.features, strict=True)),
        )
        assert model.value(inputs) == by_id[str(row["客户编号"])]


def test_a_stored_value_model_that_is_not_one_is_refused_with_its_path() -> None:
    columns = _columns(50, 3)
    model, _ = fit_value_model(columns, tenure_field="t", activity_field=None)
    doc = value_model_to_dict(model)
    assert value_model_from_dict(json.loads(json.dumps(doc)), "v", ValueError) == model
    doc["cuts"]["tenure"] = [3.0, 1.0]
    with pytest.raises(ValueError, match=r"v\.cuts\.tenure: expected a non-empty ascending"):
        value_model_from_dict(doc, "v", ValueError)
    doc = value_model_to_dict(model) | {"weights": {"wealth": 1.0}}
    with pytest.raises(ValueError, match=r"v\.weights: expected non-negative weights"):
        value_model_from_dict(doc, "v", ValueError)


def test_a_schema_naming_a_value_field_it_cannot_keep_is_refused() -> None:
    doc = RETAIL_SCHEMA.to_dict() | {"customer_value": {"tenure": "存款余额"}}
    with pytest.raises(
        SchemaError,
        match=r"customer_value\.tenure names '存款余额'; expected a field of kind 'number'",
    ):
        schema_from_dict(doc)
    with pytest.raises(SchemaError, match=r"unknown key\(s\) \['age'\]"):
        schema_from_dict(RETAIL_SCHEMA.to_dict() | {"customer_value": {"age": "年龄"}})


def test_the_batch_values_customers_as_training_did(tmp_path: Path) -> None:
    path = tmp_path / "c.del"
    write_retail(generate_retail(800, seed=9), path, "del")
    trained = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=2))
    model = trained.bundle.value_model
    assert model is not None
    assert np.array_equal(values_of(model, trained.data), trained.values)
