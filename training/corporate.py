"""Corporate training and scoring (seed 001, 对公): select a model, export it, score files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules_store.bundle.schema import ID_COLUMN
from rules_store.domain.scoring import ScoringModel
from training.corporate_data import (
    ADDRESS_COLUMNS,
    CorporateData,
    Task,
    encode_features,
    feature_inputs,
    in_region,
    learn_inputs,
)
from training.model_export import export_estimator
from training.model_selection import Scores, Selection, SelectionParams, select_model
from training.retail import code_version_string
from training.stages import Stages


@dataclass
class CorporateTraining:
    model: ScoringModel
    selection: Selection
    data: CorporateData
    metrics: dict[str, Any]  # metrics.json


def _data_facts(data: CorporateData) -> dict[str, Any]:
    report = data.report
    return {
        "rows_read": report.rows_read,
        "rows_kept": report.rows_kept,
        "rows_with_missing": report.rows_with_missing,
        "missing_by_column": report.missing_by_column,
        "rows_without_related_data": report.without_related,
        "positives": report.positives,
        "positive_rate": (report.positives or 0) / max(report.rows_kept, 1),
        "unknown_values": [
            {"column": u.column, "value": u.value, "count": u.count} for u in report.unknown
        ],
        "not_features": list(report.not_features),
    }


def train_corporate(
    task: Task,
    data: CorporateData,
    params: SelectionParams,
    *,
    fingerprint: str,
    unknown: str = "stop",
    stages: Stages | None = None,
    on_candidate: Callable[[str, Scores], None] = lambda _, __: None,
) -> CorporateTraining:
    """Compare the candidates on `data`, keep the best, export it as a scoring model."""
    if data.labels is None:
        msg = "training needs labelled data"
        raise ValueError(msg)
    inputs = learn_inputs(feature_inputs(task), data.features)
    selection = select_model(
        inputs,
        data.features,
        data.labels,
        params,
        what=task.label_text,
        stages=stages,
        on_candidate=on_candidate,
    )
    metrics: dict[str, Any] = {
        "task": task.name,
        "label": task.label_text,
        "data": _data_facts(data),
        "features": [s.name for s in inputs],
        "split": selection.sizes,
        "selection_rule": "best out-of-fold PR-AUC (average precision)",
        "folds": params.folds,
        "threshold_rule": selection.threshold_rule,
        "threshold": selection.threshold,
        "chosen": selection.chosen,
        "comparison": {k: v.to_dict() for k, v in selection.comparison.items()},
        "holdout": selection.test.to_dict(),
        "permutation_importance": [
            {"feature": name, "roc_auc_drop": mean, "std": std}
            for name, mean, std in selection.importance
        ],
        "leakage_warnings": selection.leaks,
    }
    model = ScoringModel(
        target=task.name,
        label=task.label_text,
        kind=selection.chosen,
        inputs=inputs,
        estimator=export_estimator(selection.model),
        threshold=selection.threshold,
        threshold_rule=selection.threshold_rule,
        unknown_policy=unknown,
        metrics={
            "holdout": selection.test.to_dict(),
            "cv_pr_auc": {k: v.pr_auc for k, v in selection.comparison.items()},
            "rows_kept": data.report.rows_kept,
            "positives": data.report.positives,
        },
        fingerprint=fingerprint,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version_string(),
    )
    return CorporateTraining(model, selection, data, metrics)


def score_data(model: ScoringModel, data: CorporateData) -> npt.NDArray[np.float64]:
    """P(positive) for every kept row, by the published model's own evaluator."""
    return model.probabilities(encode_features(model.inputs, data.features))


def churn_table(
    model: ScoringModel, data: CorporateData, *, everyone: bool = False
) -> pd.DataFrame:
    """客户编号, churn_probability, predicted: the predicted churners (or everyone), highest first."""
    p = score_data(model, data)
    table = pd.DataFrame(
        {
            ID_COLUMN: data.ids,
            "churn_probability": p,
            "predicted": (p >= model.threshold).astype(int),
        }
    )
    if not everyone:
        table = table[table["predicted"] == 1]
    return table.sort_values("churn_probability", ascending=False, kind="stable").reset_index(
        drop=True
    )


def potential_table(model: ScoringModel, data: CorporateData, region: str) -> pd.DataFrame:
    """客户编号, potential_probability, 注册地址, 经营地址: predicted potential customers
    whose registered or operating address contains `region` (empty: no filter), highest first."""
    if data.addresses is None:
        msg = "potential scoring needs the related data (addresses)"
        raise ValueError(msg)
    p = score_data(model, data)
    keep = p >= model.threshold
    if region:
        keep &= in_region(data.addresses, region)
    table = pd.DataFrame(
        {
            ID_COLUMN: data.ids[keep],
            "potential_probability": p[keep],
            **{c: data.addresses[c].to_numpy(dtype=object)[keep] for c in ADDRESS_COLUMNS},
        }
    )
    return table.sort_values("potential_probability", ascending=False, kind="stable").reset_index(
        drop=True
    )
