"""Propensity: per product, a classifier of "holds it" from the profile and the other
holdings, chosen among logistic regression, histogram gradient boosting and an MLP by
cross-validation, as the corporate models are (training/model_selection.py).

Differences from the corporate procedure, and why: no class weights and the choice is by
out-of-fold log loss, because offers compare one product's probability with another's,
so each model's probabilities must be calibrated, not only ordered. The product's own
bit is zeroed in its model's rows: a customer is scored for products they lack, where
that bit is 0 too. Cross-validation runs on a sample (`cv_sample` rows) and the chosen
kind is fitted on `fit_sample` rows: enough to estimate eight probabilities well, and
what keeps a million customers within a minute.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from rules_store.domain.ranking import (
    HELD_PREFIX,
    Customers,
    PropensityModels,
    PropensityScorer,
    held_bits,
)
from rules_store.domain.scoring import EstimatorKind, InputFeature, ScoringModel
from training.model_export import export_estimator

FloatArray = np.ndarray
PROPENSITY_KINDS: tuple[EstimatorKind, ...] = (
    "logistic_regression",
    "hist_gradient_boosting",
    "mlp",
)


@dataclass(frozen=True)
class PropensityParams:
    candidates: tuple[EstimatorKind, ...] = PROPENSITY_KINDS
    folds: int = 3
    cv_sample: int = 6_000
    fit_sample: int = 40_000
    seed: int = 7
    threads: int | None = 1  # see SelectionParams.threads


def make_propensity_estimator(kind: EstimatorKind, seed: int) -> ClassifierMixin:
    if kind == "logistic_regression":
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))])
    if kind == "mlp":
        mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=seed)
        return Pipeline([("scale", StandardScaler()), ("model", mlp)])
    if kind == "hist_gradient_boosting":
        # 30 trees at a learning rate of 0.2, not 60 at 0.1: the same out-of-fold log loss
        # and as good a forward MAP@7 on generated data, at half the cost of every score
        # and explanation in the stream (README, "Speed of the rankers").
        return HistGradientBoostingClassifier(
            max_iter=30,
            learning_rate=0.2,
            max_leaf_nodes=15,
            early_stopping=False,
            random_state=seed,
        )
    msg = f"{kind!r} is not a propensity model; expected one of {list(PROPENSITY_KINDS)}"
    raise ValueError(msg)


def fit_quietly(model: ClassifierMixin, rows: FloatArray, y: FloatArray) -> ClassifierMixin:
    with warnings.catch_warnings():
        # A capped number of MLP epochs is a choice (time), not a defect; CV judges the result.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(rows, y)  # type: ignore[no-any-return]


def _oof_log_loss(
    kind: EstimatorKind, rows: FloatArray, y: FloatArray, params: PropensityParams
) -> float:
    folds = StratifiedKFold(params.folds, shuffle=True, random_state=params.seed)
    oof = np.zeros(len(y))
    for train, test in folds.split(rows, y):
        model = fit_quietly(
            clone(make_propensity_estimator(kind, params.seed)), rows[train], y[train]
        )
        oof[test] = model.predict_proba(rows[test])[:, 1]  # type: ignore[attr-defined]
    return float(log_loss(y, np.clip(oof, 1e-9, 1 - 1e-9), labels=[0, 1]))


def fit_propensity(
    customers: Customers,
    items: tuple[str, ...],
    feature_names: tuple[str, ...],
    columns: tuple[int, ...],
    params: PropensityParams,
    *,
    on_item: Callable[[str], None] = lambda _: None,
) -> tuple[PropensityScorer, dict[str, dict[str, float]]]:
    """The scorer and, per product, each candidate's out-of-fold log loss."""
    rows = np.hstack([customers.features[:, list(columns)], held_bits(customers.held, len(items))])
    rng = np.random.default_rng(params.seed)
    fit_rows = rng.choice(len(rows), size=min(len(rows), params.fit_sample), replace=False)
    cv_rows = fit_rows[: min(len(fit_rows), params.cv_sample)]
    names = (*(feature_names[c] for c in columns), *(f"{HELD_PREFIX}{item}" for item in items))
    inputs = tuple(InputFeature(name, "number") for name in names)
    width = len(columns)
    models: list[ScoringModel | None] = []
    rates: list[float] = []
    comparison: dict[str, dict[str, float]] = {}
    with threadpool_limits(limits=params.threads):
        for j, item in enumerate(items):
            on_item(item)
            x = rows.copy()
            x[:, width + j] = 0.0
            y = ((customers.held >> j) & 1).astype(np.float64)
            rates.append(float(y.mean()))
            y_cv = y[cv_rows]
            positives = int(y_cv.sum())
            if min(positives, len(y_cv) - positives) < 2 * params.folds:
                models.append(None)  # (almost) everyone or no one holds it: its rate says it all
                continue
            losses: dict[str, float] = {
                kind: _oof_log_loss(kind, x[cv_rows], y_cv, params) for kind in params.candidates
            }
            comparison[item] = losses
            chosen = min(params.candidates, key=lambda k: losses[k])
            fitted = fit_quietly(
                make_propensity_estimator(chosen, params.seed), x[fit_rows], y[fit_rows]
            )
            models.append(
                ScoringModel(
                    target=f"holds {item}",
                    label=f"{item} held (a non-zero balance)",
                    kind=chosen,
                    inputs=inputs,
                    estimator=export_estimator(fitted),
                    threshold=0.5,
                    threshold_rule="none: the probability ranks products",
                    metrics={f"cv_log_loss_{k}": v for k, v in losses.items()},
                )
            )
    means = tuple(float(v) for v in rows[fit_rows].mean(axis=0))
    spec = PropensityModels(tuple(models), tuple(rates), means, names, columns)
    return PropensityScorer(spec), comparison
