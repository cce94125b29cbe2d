"""Corporate model selection finds the planted signal, finds nothing in shuffled labels,
and never lets a label, date or id column into the features."""

from __future__ import annotations

import numpy as np
import pytest

from rules_store.bundle.schema import ID_COLUMN
from training.corporate import potential_table, train_corporate
from training.corporate_data import (
    ADDRESS_COLUMNS,
    CHURN,
    CHURN_SCHEMA,
    POTENTIAL,
    POTENTIAL_SCHEMA,
    RELATED_SCHEMA,
    CorporateData,
    Task,
    encode_features,
    feature_inputs,
    in_region,
    load_churn,
    load_potential,
)
from training.corporate_generate import generate_churn, generate_potential
from training.generate import write_table
from training.model_selection import SelectionParams, TrainingDataError, select_model

FAST = SelectionParams(folds=3, forest_trees=25, boosting_iterations=40, repeats=2)


@pytest.fixture(scope="module")
def churn_data(tmp_path_factory: pytest.TempPathFactory) -> CorporateData:
    path = tmp_path_factory.mktemp("corporate") / "churn.del"
    write_table(generate_churn(2_500, seed=11), CHURN_SCHEMA.columns, path, "del")
    return load_churn(path)


@pytest.fixture(scope="module")
def potential_data(tmp_path_factory: pytest.TempPathFactory) -> CorporateData:
    folder = tmp_path_factory.mktemp("potential")
    frame, related = generate_potential(2_500, seed=12)
    write_table(frame, POTENTIAL_SCHEMA.columns, folder / "p.csv", "csv")
    write_table(related, RELATED_SCHEMA.columns, folder / "r.csv", "csv")
    return load_potential(folder / "p.csv", folder / "r.csv")


@pytest.mark.parametrize(
    ("task", "fixture", "least"), [(CHURN, "churn_data", 0.8), (POTENTIAL, "potential_data", 0.75)]
)
def test_the_planted_signal_is_found_on_the_hold_out(
    task: Task, fixture: str, least: float, request: pytest.FixtureRequest
) -> None:
    data: CorporateData = request.getfixturevalue(fixture)
    run = train_corporate(task, data, FAST, fingerprint="test")
    assert run.selection.test.roc_auc > least
    assert run.selection.test.pr_auc > (data.report.positives or 0) / data.report.rows_kept + 0.2
    assert set(run.selection.comparison) == set(FAST.candidates)
    # The two most important fields are planted drivers (training/corporate_generate.py).
    planted = (
        {"近一年交易天数", "产品持有数", "行业", "贷款余额"}
        if task is CHURN
        else {"注册资本", "产品持有数", "行业"}
    )
    assert {name for name, _, _ in run.selection.importance[:2]} <= planted
    assert run.metrics["holdout"]["confusion_matrix"][1][1] > 0


def test_shuffled_labels_give_chance_level_roc_auc(churn_data: CorporateData) -> None:
    assert churn_data.labels is not None
    shuffled = np.random.default_rng(5).permutation(churn_data.labels)
    selection = select_model(feature_inputs(CHURN), churn_data.features, shuffled, FAST, what="x")
    assert abs(selection.test.roc_auc - 0.5) < 0.1
    for scores in selection.comparison.values():
        assert abs(scores.roc_auc - 0.5) < 0.1


@pytest.mark.parametrize("task", [CHURN, POTENTIAL])
def test_label_date_id_and_address_columns_never_become_features(task: Task) -> None:
    names = {spec.name for spec in feature_inputs(task)}
    forbidden = {ID_COLUMN, *task.label_columns, *ADDRESS_COLUMNS}
    forbidden |= {c for c in task.schema.columns if "日期" in c}
    assert names
    assert not names & forbidden
    assert names == {c for c in task.schema.columns if c not in forbidden}


def test_loaded_features_hold_only_model_inputs(
    churn_data: CorporateData, potential_data: CorporateData
) -> None:
    for data, task in ((churn_data, CHURN), (potential_data, POTENTIAL)):
        assert list(data.features.columns) == [s.name for s in feature_inputs(task)]
        assert set(task.label_columns) <= set(data.report.not_features)
    assert {"开户日期", "最近交易日期"} <= set(churn_data.report.not_features)


def test_the_region_filter_is_exact(potential_data: CorporateData) -> None:
    run = train_corporate(POTENTIAL, potential_data, FAST, fingerprint="test")
    table = potential_table(run.model, potential_data, "广东")
    assert len(table) > 0
    for registered, operating in zip(table["注册地址"], table["经营地址"], strict=True):
        assert "广东" in registered or "广东" in operating
    addresses = potential_data.addresses
    assert addresses is not None
    p = run.model.probabilities(encode_features(run.model.inputs, potential_data.features))
    expected = set(potential_data.ids[(p >= run.model.threshold) & in_region(addresses, "广东")])
    assert set(table[ID_COLUMN]) == expected
    # 广西 (also 广…) and 山东 (also …东) addresses alone do not match.
    assert not (in_region(addresses, "广") == in_region(addresses, "广东")).all()
    everyone = potential_table(run.model, potential_data, "")
    assert len(everyone) > len(table)


def test_data_with_one_class_only_is_refused(churn_data: CorporateData) -> None:
    nobody = np.zeros(churn_data.report.rows_kept, dtype=bool)
    with pytest.raises(TrainingDataError, match="no positive labels"):
        select_model(feature_inputs(CHURN), churn_data.features, nobody, FAST, what="x")


def test_potential_rows_without_related_data_are_counted(potential_data: CorporateData) -> None:
    assert potential_data.report.without_related > 0
    assert potential_data.report.rows_read == 2_500


def test_a_target_recall_sets_the_threshold(churn_data: CorporateData) -> None:
    params = SelectionParams(
        folds=3,
        forest_trees=10,
        boosting_iterations=20,
        repeats=1,
        target_recall=0.9,
        candidates=("logistic_regression",),
    )
    assert churn_data.labels is not None
    selection = select_model(
        feature_inputs(CHURN), churn_data.features, churn_data.labels, params, what="x"
    )
    assert selection.comparison["logistic_regression"].recall >= 0.9
    assert "recall >= 0.9" in selection.threshold_rule
