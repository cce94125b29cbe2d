"""A fitted scikit-learn classifier as the plain values `rules_store.domain.scoring` evaluates."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from rules_store.domain.scoring import (
    BoostingModel,
    Estimator,
    ForestModel,
    LogisticModel,
    MLPModel,
    Tree,
)
from rules_store.errors import XsellError


class ExportError(XsellError, TypeError):
    """The estimator is not one this product can publish."""


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _ints(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).ravel())


def _forest(model: RandomForestClassifier) -> ForestModel:
    trees = []
    for estimator in model.estimators_:
        t = estimator.tree_
        value = t.value[:, 0, :]
        # sklearn's DecisionTreeClassifier.predict_proba: the leaf's class weights divided
        # by their sum, element by element (the same float64 operation here).
        share = value[:, 1] / value.sum(axis=1)
        leaf = t.children_left < 0
        trees.append(
            Tree(
                feature=_ints(np.where(leaf, -1, t.feature)),
                threshold=_floats(np.where(leaf, 0.0, t.threshold)),
                left=_ints(np.where(leaf, -1, t.children_left)),
                right=_ints(np.where(leaf, -1, t.children_right)),
                value=_floats(np.where(leaf, share, 0.0)),
            )
        )
    return ForestModel(tuple(trees))


def _boosting(model: HistGradientBoostingClassifier) -> BoostingModel:
    if model.n_trees_per_iteration_ != 1:
        msg = "only binary gradient boosting can be exported"
        raise ExportError(msg)
    trees = []
    # scikit-learn exposes a fitted booster's trees only as private attributes; a test
    # pins the export against its predictions, so a change there fails loudly.
    for (predictor,) in model._predictors:  # noqa: SLF001 - one predictor per iteration (binary)
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            msg = "gradient boosting with native categorical splits cannot be exported"
            raise ExportError(msg)
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(
            Tree(
                # The node fields are unsigned: widen before -1 can mark a leaf.
                feature=_ints(np.where(leaf, -1, nodes["feature_idx"].astype(np.int64))),
                threshold=_floats(np.where(leaf, 0.0, nodes["num_threshold"])),
                left=_ints(np.where(leaf, -1, nodes["left"].astype(np.int64))),
                right=_ints(np.where(leaf, -1, nodes["right"].astype(np.int64))),
                value=_floats(np.where(leaf, nodes["value"], 0.0)),
            )
        )
    baseline = model._baseline_prediction  # noqa: SLF001 - see above
    return BoostingModel(float(np.asarray(baseline).ravel()[0]), tuple(trees))


def export_estimator(model: ClassifierMixin) -> Estimator:
    """Logistic regression or an MLP (in a scaler pipeline), random forest or gradient boosting."""
    if isinstance(model, Pipeline) and isinstance(model.named_steps["model"], MLPClassifier):
        scaler, mlp = model.named_steps["scale"], model.named_steps["model"]
        if mlp.activation != "relu" or mlp.n_outputs_ != 1:
            msg = "only a binary MLPClassifier with ReLU activation can be exported"
            raise ExportError(msg)
        return MLPModel(
            mean=_floats(scaler.mean_),
            scale=_floats(scaler.scale_),
            weights=tuple(tuple(_floats(row) for row in w) for w in mlp.coefs_),
            biases=tuple(_floats(b) for b in mlp.intercepts_),
        )
    if isinstance(model, Pipeline):
        scaler, linear = model.named_steps["scale"], model.named_steps["model"]
        return LogisticModel(
            mean=_floats(scaler.mean_),
            scale=_floats(scaler.scale_),
            coef=_floats(linear.coef_[0]),
            intercept=float(linear.intercept_[0]),
        )
    if isinstance(model, RandomForestClassifier):
        return _forest(model)
    if isinstance(model, HistGradientBoostingClassifier):
        return _boosting(model)
    msg = f"cannot export a {type(model).__name__}"
    raise ExportError(msg)
