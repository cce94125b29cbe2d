"""Published corporate models: the pure evaluator equals scikit-learn, the codec keeps it so,
and a malformed model document is refused with the path to the fault."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from rules_store.bundle.codec import bundle_from_dict, bundle_to_dict
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.bundle.scoring_codec import ModelFormatError, model_from_dict, model_to_dict
from rules_store.domain.scoring import (
    EstimatorKind,
    FeatureError,
    ScoringModel,
    encode_record,
    unseen_inputs,
)
from rules_store.store.local_store import load_model, save_model
from training.corporate_data import CHURN, encode_features, feature_inputs, learn_inputs, prepare
from training.corporate_generate import INDUSTRIES, generate_churn
from training.generate import generate_retail, write_retail
from training.model_export import export_estimator
from training.model_selection import SelectionParams, make_estimator
from training.retail import TrainParams, train_retail

KINDS: tuple[EstimatorKind, ...] = (
    "logistic_regression",
    "random_forest",
    "hist_gradient_boosting",
)
INPUTS = learn_inputs(feature_inputs(CHURN), pd.DataFrame({"行业": INDUSTRIES}))


@pytest.fixture(scope="module")
def churn_frame() -> pd.DataFrame:
    frame = generate_churn(1_200, seed=3, dirty_share=0.0)
    data = prepare(
        frame.drop(columns=["planted_churn"]),
        CHURN,
        source="generated",
        lines=np.arange(1, len(frame) + 1),
        unknown="stop",
        with_labels=True,
    )
    assert data.labels is not None
    return data.features.assign(_label=data.labels)


def _model(kind: EstimatorKind, frame: pd.DataFrame) -> tuple[Any, ScoringModel]:
    rows = encode_features(INPUTS, frame)
    params = SelectionParams(forest_trees=15, boosting_iterations=40)
    with threadpool_limits(limits=1):  # OpenMP threads crawl on a busy machine
        fitted = clone(make_estimator(kind, params)).fit(rows, frame["_label"].to_numpy())
    scoring = ScoringModel(
        target="churn",
        label=CHURN.label_text,
        kind=kind,
        inputs=INPUTS,
        estimator=export_estimator(fitted),
        threshold=0.5,
        threshold_rule="test",
    )
    return fitted, scoring


def _records(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    return frame.drop(columns=["_label"]).head(n).to_dict("records")  # type: ignore[return-value]


@pytest.mark.parametrize("kind", KINDS)
def test_exported_model_equals_sklearn_predict_proba_batch_and_per_record_and_after_json(
    churn_frame: pd.DataFrame, kind: EstimatorKind
) -> None:
    fitted, scoring = _model(kind, churn_frame)
    rows = encode_features(INPUTS, churn_frame)
    expected = fitted.predict_proba(rows)[:, 1]
    assert np.abs(scoring.probabilities(rows) - expected).max() <= 1e-9
    per_record = [scoring.probability(r) for r in _records(churn_frame, 200)]
    assert np.abs(np.array(per_record) - expected[:200]).max() <= 1e-9

    text = json.dumps(model_to_dict(scoring), ensure_ascii=False)
    assert "pickle" not in text
    again = model_from_dict(json.loads(text))
    assert again == scoring
    assert np.abs(again.probabilities(rows) - expected).max() <= 1e-9
    assert again.probability(_records(churn_frame, 1)[0]) == pytest.approx(expected[0], abs=1e-9)


def test_a_bundle_carries_the_churn_model_through_json(
    churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "r.del"
    write_retail(generate_retail(400, seed=2, dirty_share=0.0), path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=2)).bundle
    assert "churn_model" not in bundle_to_dict(bundle)  # old bundles keep their bytes
    assert bundle.churn_model is None

    fitted, scoring = _model("random_forest", churn_frame)
    with_model = replace(bundle, churn_model=scoring)
    loaded = bundle_from_dict(json.loads(json.dumps(bundle_to_dict(with_model))))
    assert loaded == with_model
    assert loaded.churn_model is not None
    assert loaded.churn_model.feature_names == tuple(s.name for s in INPUTS)
    record = _records(churn_frame, 1)[0]
    expected = fitted.predict_proba(encode_features(INPUTS, churn_frame.head(1)))[0, 1]
    assert loaded.churn_model.probability(record) == pytest.approx(expected, abs=1e-9)

    save_model(tmp_path / "run", scoring)
    assert load_model(tmp_path / "run", target="churn") == scoring
    with pytest.raises(ModelFormatError, match="a churn model, but a potential model"):
        load_model(tmp_path / "run", target="potential")


def test_a_record_without_a_feature_is_refused_by_name(churn_frame: pd.DataFrame) -> None:
    _, scoring = _model("logistic_regression", churn_frame)
    record = _records(churn_frame, 1)[0]
    del record["近一年交易天数"]
    with pytest.raises(FeatureError, match="近一年交易天数"):
        scoring.probability(record)


def test_an_industry_unseen_in_training_scores_as_all_zero_indicators(
    churn_frame: pd.DataFrame,
) -> None:
    _, scoring = _model("logistic_regression", churn_frame)
    record = _records(churn_frame, 1)[0] | {"行业": "炼丹业"}
    row = encode_record(scoring.inputs, record)
    industry = [v for c, v in zip(scoring.columns, row, strict=True) if c.startswith("行业=")]
    assert len(industry) == len(INDUSTRIES)
    assert industry == [0.0] * len(INDUSTRIES)
    assert scoring.probability(record) == scoring.estimator.predict_one(row)
    assert unseen_inputs(scoring.inputs, record) == ("行业",)
    assert unseen_inputs(scoring.inputs, _records(churn_frame, 1)[0]) == ()
    # A field whose values were listed keeps refusing values outside them.
    listed = replace(scoring, inputs=tuple(replace(s, learned=False) for s in scoring.inputs))
    with pytest.raises(FeatureError, match="行业"):
        listed.probability(record)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["estimator"]["trees"][0]["left"].__setitem__(0, 0), "must come after it"),
        (lambda d: d["estimator"]["trees"][0]["feature"].__setitem__(0, 99), "outside the"),
        (lambda d: d["estimator"]["trees"][0]["value"].__setitem__(0, "x"), "value[0]"),
        (lambda d: d.__setitem__("kind", "pickle"), "kind is 'pickle'"),
        (lambda d: d.__setitem__("threshold", 2.0), "not a probability"),
        (lambda d: d["inputs"][0].__setitem__("kind", "code"), "inputs[0].kind"),
    ],
)
def test_a_malformed_model_document_is_refused_with_its_path(
    churn_frame: pd.DataFrame, edit: Any, expected: str
) -> None:
    _, scoring = _model("random_forest", churn_frame)
    doc = copy.deepcopy(model_to_dict(scoring))
    edit(doc)
    with pytest.raises(ModelFormatError) as caught:
        model_from_dict(doc)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["estimator"]["coef"].__setitem__(2, float("nan")),
            "model.estimator.coef[2]: expected a finite number, got nan",
        ),
        (
            lambda d: d["estimator"].__setitem__("intercept", 10**400),
            "model.estimator.intercept: expected a finite number, got 1000",
        ),
        (
            lambda d: d.__setitem__("metrics", {"holdout": {"roc_auc": float("inf")}}),
            "model.metrics.holdout.roc_auc: expected a finite number, got inf",
        ),
    ],
)
def test_a_model_with_a_non_finite_figure_is_refused_with_its_path(
    churn_frame: pd.DataFrame, edit: Any, expected: str
) -> None:
    _, scoring = _model("logistic_regression", churn_frame)
    doc = copy.deepcopy(model_to_dict(scoring))
    edit(doc)
    with pytest.raises(ModelFormatError) as caught:
        model_from_dict(json.loads(json.dumps(doc)))  # NaN/Infinity literals parse, then refused
    assert expected in str(caught.value)


def test_a_model_with_a_nan_metric_is_not_written(
    churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    _, scoring = _model("logistic_regression", churn_frame)
    with pytest.raises(ModelFormatError, match=r"metrics.cv_pr_auc: expected a finite number"):
        save_model(tmp_path, replace(scoring, metrics={"cv_pr_auc": float("nan")}))
    assert list(tmp_path.iterdir()) == []
