"""Choosing a corporate model: compare candidates by stratified cross-validation, pick a
threshold by a stated rule, measure on a held-out split, explain by permutation.

The procedure, in order:
1. A stratified hold-out split (`test_size`, default 25%) is set aside and not looked at
   until the end.
2. On the rest, each candidate (logistic regression on standardized features, random
   forest, histogram gradient boosting; all weighting the classes inversely to their
   frequency) is scored by stratified k-fold cross-validation: out-of-fold probabilities
   give ROC-AUC, PR-AUC (average precision) and, at the candidate's own threshold,
   precision, recall, F1 and the confusion matrix.
3. The candidate with the best out-of-fold PR-AUC wins (PR-AUC, not ROC-AUC, because the
   positive class is rare). Its decision threshold comes from its out-of-fold
   probabilities: the one with the best F1, or, with a target recall, the highest
   threshold whose recall reaches it.
4. The winner is fitted on the whole training part and measured once on the hold-out;
   those are the figures reported as the model's. That fitted model is the one exported.
5. Permutation importance on the hold-out: each raw field (a category's indicator
   columns together) is shuffled `repeats` times; the importance is the mean drop in
   ROC-AUC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from rules_store.domain.scoring import EstimatorKind, InputFeature
from rules_store.errors import XsellError
from training.corporate_data import encode_features
from training.stages import Stages

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
LEAKY_AUC = 0.95


class TrainingDataError(XsellError, ValueError):
    """The labelled data cannot train a model (one class only, too few positives)."""


@dataclass(frozen=True)
class SelectionParams:
    folds: int = 5
    test_size: float = 0.25
    target_recall: float | None = None  # None: the threshold with the best F1
    seed: int = 7
    forest_trees: int = 200
    boosting_iterations: int = 200
    repeats: int = 5  # permutation importance
    # OpenMP/BLAS threads while fitting. One by default: on a busy 2-core machine OpenMP
    # workers spin while they wait, and a 1,500-row gradient-boosting fit took 67 s with
    # the default thread count against 0.3 s with one (measured 2026-11-24).
    threads: int | None = 1
    candidates: tuple[EstimatorKind, ...] = (
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
    )

    @property
    def threshold_rule(self) -> str:
        if self.target_recall is None:
            return "best F1 on the out-of-fold probabilities"
        return f"highest threshold with out-of-fold recall >= {self.target_recall:g}"


def make_estimator(kind: EstimatorKind, params: SelectionParams) -> ClassifierMixin:
    if kind == "logistic_regression":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(class_weight="balanced", max_iter=2000)),
            ]
        )
    if kind == "random_forest":
        return RandomForestClassifier(
            n_estimators=params.forest_trees,
            min_samples_leaf=5,
            max_depth=12,
            class_weight="balanced_subsample",
            random_state=params.seed,
        )
    return HistGradientBoostingClassifier(
        max_iter=params.boosting_iterations,
        learning_rate=0.1,
        class_weight="balanced",
        random_state=params.seed,
    )


@dataclass(frozen=True)
class Scores:
    """A model's figures on one set of probabilities, at one threshold."""

    precision: float
    recall: float
    f1: float
    roc_auc: float
    pr_auc: float
    threshold: float
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [[TN, FP], [FN, TP]]
    roc_auc_folds: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "threshold": self.threshold,
            "confusion_matrix": [list(self.confusion[0]), list(self.confusion[1])],
            **({"roc_auc_folds": list(self.roc_auc_folds)} if self.roc_auc_folds else {}),
        }


def choose_threshold(y: BoolArray, p: FloatArray, target_recall: float | None) -> float:
    """Best F1, or the highest threshold whose recall reaches the target.

    >>> y = np.array([False, False, True, True]); p = np.array([0.1, 0.6, 0.4, 0.9])
    >>> float(choose_threshold(y, p, None)), float(choose_threshold(y, p, 0.5))
    (0.4, 0.9)
    """
    precision, recall, thresholds = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if target_recall is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        return float(thresholds[int(np.argmax(f1))])
    reaching = np.flatnonzero(recall >= target_recall)
    return float(thresholds[reaching[-1]]) if reaching.size else float(thresholds[0])


def score(y: BoolArray, p: FloatArray, threshold: float) -> Scores:
    predicted = p >= threshold
    (tn, fp), (fn, tp) = confusion_matrix(y, predicted, labels=[False, True]).tolist()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return Scores(
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        threshold=threshold,
        confusion=((tn, fp), (fn, tp)),
    )


def check_labels(y: BoolArray, folds: int, what: str) -> None:
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        kind = "positive" if positives == 0 else "negative"
        msg = (
            f"no {kind} labels at all among {len(y):,} rows ({what}); a model needs both "
            "classes: check the label columns, or use a snapshot with both kinds of customer"
        )
        raise TrainingDataError(msg)
    least = min(positives, negatives)
    needed = 2 * folds  # each fold of the training part and the hold-out need one
    if least < needed:
        msg = (
            f"only {least} row(s) of the rarer class ({what}); {folds}-fold cross-validation "
            f"and a hold-out need at least {needed}: use more data or fewer --folds"
        )
        raise TrainingDataError(msg)


def _positive_proba(model: ClassifierMixin, rows: FloatArray) -> FloatArray:
    return np.asarray(model.predict_proba(rows)[:, 1], dtype=np.float64)  # type: ignore[attr-defined]


def cross_validate(
    kind: EstimatorKind, rows: FloatArray, y: BoolArray, params: SelectionParams
) -> tuple[FloatArray, tuple[float, ...]]:
    """Out-of-fold probabilities and each fold's ROC-AUC."""
    folds = StratifiedKFold(params.folds, shuffle=True, random_state=params.seed)
    oof = np.zeros(len(y))
    aucs = []
    for train, test in folds.split(rows, y):
        model = clone(make_estimator(kind, params)).fit(rows[train], y[train])
        oof[test] = _positive_proba(model, rows[test])
        aucs.append(float(roc_auc_score(y[test], oof[test])))
    return oof, tuple(aucs)


def permutation_importance(
    model: ClassifierMixin,
    inputs: tuple[InputFeature, ...],
    features: pd.DataFrame,
    y: BoolArray,
    *,
    repeats: int,
    seed: int,
) -> list[tuple[str, float, float]]:
    """(field, mean drop in ROC-AUC, its standard deviation), most important first."""
    rng = np.random.default_rng(seed)
    base = roc_auc_score(y, _positive_proba(model, encode_features(inputs, features)))
    found = []
    for spec in inputs:
        drops = []
        for _ in range(repeats):
            shuffled = features.copy()
            shuffled[spec.name] = rng.permutation(shuffled[spec.name].to_numpy())
            p = _positive_proba(model, encode_features(inputs, shuffled))
            drops.append(base - roc_auc_score(y, p))
        found.append((spec.name, float(np.mean(drops)), float(np.std(drops))))
    return sorted(found, key=lambda item: -item[1])


def single_feature_leaks(
    inputs: tuple[InputFeature, ...], features: pd.DataFrame, y: BoolArray
) -> list[str]:
    """Numeric fields that alone separate the classes almost perfectly: a sign that they
    were measured after (or derived from) what the label describes."""
    warnings = []
    for spec in inputs:
        if spec.kind != "number":
            continue
        auc = float(roc_auc_score(y, features[spec.name].to_numpy(dtype=np.float64)))
        if max(auc, 1 - auc) > LEAKY_AUC:
            warnings.append(
                f"{spec.name} alone gives ROC-AUC {max(auc, 1 - auc):.3f}: check that it is "
                "not measured after, or derived from, what the label describes"
            )
    return warnings


@dataclass
class Selection:
    comparison: dict[str, Scores]  # candidate -> out-of-fold figures
    chosen: EstimatorKind
    threshold: float
    threshold_rule: str
    model: ClassifierMixin  # the chosen kind, fitted on the training part
    test: Scores
    roc: tuple[FloatArray, FloatArray]  # hold-out false and true positive rates
    pr: tuple[FloatArray, FloatArray]  # hold-out recall and precision
    importance: list[tuple[str, float, float]]
    leaks: list[str]
    sizes: dict[str, int] = field(default_factory=dict)


def select_model(
    inputs: tuple[InputFeature, ...],
    features: pd.DataFrame,
    y: BoolArray,
    params: SelectionParams,
    *,
    what: str,
    stages: Stages | None = None,
    on_candidate: Callable[[str, Scores], None] = lambda _, __: None,
) -> Selection:
    """Steps 1-5 of the module docstring."""
    with threadpool_limits(limits=params.threads):
        return _select_model(inputs, features, y, params, what, stages or Stages(), on_candidate)


def _select_model(
    inputs: tuple[InputFeature, ...],
    features: pd.DataFrame,
    y: BoolArray,
    params: SelectionParams,
    what: str,
    stages: Stages,
    on_candidate: Callable[[str, Scores], None],
) -> Selection:
    check_labels(y, params.folds, what)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=params.test_size, stratify=y, random_state=params.seed
    )
    rows = encode_features(inputs, features)
    comparison: dict[str, Scores] = {}
    oof_by_kind: dict[str, FloatArray] = {}
    y_train = y[train_idx]
    for kind in params.candidates:
        with stages.stage(f"cross-validate {kind} ({params.folds} folds)"):
            oof, aucs = cross_validate(kind, rows[train_idx], y_train, params)
        threshold = choose_threshold(y_train, oof, params.target_recall)
        scores = score(y_train, oof, threshold)
        comparison[kind] = Scores(**{**scores.__dict__, "roc_auc_folds": aucs})
        oof_by_kind[kind] = oof
        on_candidate(kind, comparison[kind])
    chosen = max(params.candidates, key=lambda k: comparison[k].pr_auc)
    threshold = comparison[chosen].threshold
    with stages.stage(f"fit {chosen} and measure it on the hold-out"):
        model = clone(make_estimator(chosen, params)).fit(rows[train_idx], y_train)
        p_test = _positive_proba(model, rows[test_idx])
        test = score(y[test_idx], p_test, threshold)
        fpr, tpr, _ = roc_curve(y[test_idx], p_test)
        precision, recall, _ = precision_recall_curve(y[test_idx], p_test)
    with stages.stage("permutation importance"):
        importance = permutation_importance(
            model,
            inputs,
            features.iloc[test_idx].reset_index(drop=True),
            y[test_idx],
            repeats=params.repeats,
            seed=params.seed,
        )
    leaks = single_feature_leaks(inputs, features.iloc[train_idx], y_train)
    return Selection(
        comparison=comparison,
        chosen=chosen,
        threshold=threshold,
        threshold_rule=params.threshold_rule,
        model=model,
        test=test,
        roc=(fpr, tpr),
        pr=(recall, precision),
        importance=importance,
        leaks=leaks,
        sizes={
            "train": len(train_idx),
            "test": len(test_idx),
            "train_positives": int(y_train.sum()),
            "test_positives": int(y[test_idx].sum()),
        },
    )
