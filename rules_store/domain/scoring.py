"""Fitted classifiers as plain values, and their evaluation without scikit-learn.

Training exports the chosen estimator (logistic regression, random forest or histogram
gradient boosting) with its input encoding; the batch commands and the stream evaluate
it here. The arithmetic follows scikit-learn's step by step (a forest compares float32
inputs, averages tree by tree; boosting sums from the baseline, then the sigmoid), so a
test can hold both to 1e-9 on the same rows.

A record is a mapping of the bank's raw field names to values: numbers as numbers (or
numeric text), categories as their text. Categories become one indicator column per
declared value, numbers stay as they are.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rules_store.errors import XsellError

FloatArray = npt.NDArray[np.float64]
EstimatorKind = Literal["logistic_regression", "random_forest", "hist_gradient_boosting", "mlp"]


class FeatureError(XsellError, ValueError):
    """A record lacks a feature the model needs, or holds a value it cannot encode."""


@dataclass(frozen=True)
class InputFeature:
    """One raw field the model reads; a category expands to one 0/1 column per value."""

    name: str
    kind: Literal["number", "category"]
    values: tuple[str, ...] = ()
    # Values learned from the training data (none were listed): an unseen value encodes
    # as all zeros, whatever the unknown policy, and is counted by the caller.
    learned: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind == "number":
            return (self.name,)
        return tuple(f"{self.name}={v}" for v in self.values)


def unseen_inputs(inputs: Sequence[InputFeature], record: Mapping[str, Any]) -> tuple[str, ...]:
    """The category fields of `record` whose value the model did not see in training.

    >>> unseen_inputs([InputFeature("行业", "category", ("制造业",), learned=True)], {"行业": "信息技术"})
    ('行业',)
    """
    return tuple(
        spec.name
        for spec in inputs
        if spec.kind == "category"
        and not _blank(record.get(spec.name))
        and str(record[spec.name]).strip() not in spec.values
    )


def encoded_columns(inputs: Sequence[InputFeature]) -> tuple[str, ...]:
    return tuple(column for spec in inputs for column in spec.columns)


def encode_record(
    inputs: Sequence[InputFeature], record: Mapping[str, Any], *, unknown: str = "stop"
) -> list[float]:
    """The model's input row for one record; `unknown="code"` (or a learned field) lets an
    unlisted category through as all-zero indicators.

    >>> encode_record([InputFeature("行业", "category", ("制造业", "建筑业")),
    ...                InputFeature("员工人数", "number")], {"行业": "建筑业", "员工人数": "12"})
    [0.0, 1.0, 12.0]
    """
    row: list[float] = []
    missing = [spec.name for spec in inputs if _blank(record.get(spec.name))]
    if missing:
        msg = f"record lacks feature(s) {missing}; the model needs {[s.name for s in inputs]}"
        raise FeatureError(msg)
    for spec in inputs:
        raw = record[spec.name]
        if spec.kind == "category":
            text = str(raw).strip()
            if text not in spec.values and unknown != "code" and not spec.learned:
                msg = f"feature {spec.name!r}: {raw!r} is not one of {list(spec.values)}"
                raise FeatureError(msg)
            row.extend(1.0 if text == value else 0.0 for value in spec.values)
            continue
        try:
            if isinstance(raw, bool):
                raise TypeError
            number = float(raw)
        except (TypeError, ValueError):
            msg = f"feature {spec.name!r} must be a number, got {raw!r}"
            raise FeatureError(msg) from None
        if not math.isfinite(number):
            msg = f"feature {spec.name!r} must be finite, got {raw!r}"
            raise FeatureError(msg)
        row.append(number)
    return row


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _float32(value: float) -> float:
    """The float32 nearest `value` (what scikit-learn's trees compare), as a Python float."""
    try:
        result: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return result


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class LogisticModel:
    """Standardize (x - mean) / scale, then the sigmoid of coef · z + intercept."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def predict(self, rows: FloatArray) -> FloatArray:
        z = (rows - np.asarray(self.mean)) / np.asarray(self.scale)
        # einsum sums each row on its own: a row's score does not depend on the rows beside
        # it (a BLAS product does, in the last bits), so a replayed batch alerts the same.
        decision = np.einsum("ij,j->i", z, np.asarray(self.coef)) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-decision)), dtype=np.float64)

    def predict_one(self, row: Sequence[float]) -> float:
        decision = math.fsum(
            (x - m) / s * c
            for x, m, s, c in zip(row, self.mean, self.scale, self.coef, strict=True)
        )
        return _sigmoid(decision + self.intercept)


@dataclass(frozen=True)
class Tree:
    """Node arrays in scikit-learn's layout: a node is a leaf when left is -1; otherwise
    a row goes left when its feature is <= threshold. Children come after their parent."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]  # leaf output: class-1 share (forest) or raw score (boosting)

    def predict_one(self, row: Sequence[float]) -> float:
        node = 0
        left, right, feature, threshold = self.left, self.right, self.feature, self.threshold
        while left[node] >= 0:
            node = left[node] if row[feature[node]] <= threshold[node] else right[node]
        return self.value[node]

    @cached_property
    def _arrays(self) -> tuple[npt.NDArray[np.int64], ...]:
        return (
            np.asarray(self.feature, dtype=np.int64).clip(min=0),
            np.asarray(self.left, dtype=np.int64),
            np.asarray(self.right, dtype=np.int64),
        )

    def predict(self, rows: FloatArray) -> FloatArray:
        feature, left, right = self._arrays
        threshold, value = np.asarray(self.threshold), np.asarray(self.value)
        node = np.zeros(len(rows), dtype=np.int64)
        index = np.arange(len(rows))
        active = left[node] >= 0
        while active.any():
            at = node[active]
            go_left = rows[index[active], feature[at]] <= threshold[at]
            node[active] = np.where(go_left, left[at], right[at])
            active = left[node] >= 0
        return np.asarray(value[node], dtype=np.float64)


@dataclass(frozen=True)
class ForestModel:
    """The mean of the trees' class-1 shares; inputs are compared as float32, like sklearn."""

    trees: tuple[Tree, ...]

    def predict(self, rows: FloatArray) -> FloatArray:
        rows32 = rows.astype(np.float32).astype(np.float64)
        total = np.zeros(len(rows))
        for tree in self.trees:
            total += tree.predict(rows32)
        return np.asarray(total / len(self.trees), dtype=np.float64)

    def predict_one(self, row: Sequence[float]) -> float:
        row32 = [_float32(x) for x in row]
        total = 0.0
        for tree in self.trees:
            total += tree.predict_one(row32)
        return total / len(self.trees)


@dataclass(frozen=True)
class BoostingModel:
    """The sigmoid of baseline + the sum of the trees' leaf values, in tree order."""

    baseline: float
    trees: tuple[Tree, ...]

    def predict(self, rows: FloatArray) -> FloatArray:
        raw = np.zeros(len(rows)) + self.baseline
        for tree in self.trees:
            raw += tree.predict(rows)
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)

    def predict_one(self, row: Sequence[float]) -> float:
        raw = 0.0 + self.baseline
        for tree in self.trees:
            raw += tree.predict_one(row)
        return _sigmoid(raw)


@dataclass(frozen=True)
class MLPModel:
    """Standardize, then ReLU hidden layers and a logistic output, as scikit-learn's
    `MLPClassifier` (activation="relu") computes `predict_proba` for two classes."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[tuple[tuple[float, ...], ...], ...]  # per layer: inputs x outputs
    biases: tuple[tuple[float, ...], ...]

    @cached_property
    def _arrays(self) -> tuple[FloatArray, FloatArray, list[FloatArray], list[FloatArray]]:
        return (
            np.asarray(self.mean),
            np.asarray(self.scale),
            [np.asarray(w, dtype=np.float64) for w in self.weights],
            [np.asarray(b, dtype=np.float64) for b in self.biases],
        )

    def predict(self, rows: FloatArray) -> FloatArray:
        mean, scale, weights, biases = self._arrays
        a = (rows - mean) / scale
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            a = np.maximum(np.einsum("ij,jk->ik", a, w) + b, 0.0)  # per row, as in LogisticModel
        out = (np.einsum("ij,jk->ik", a, weights[-1]) + biases[-1])[:, 0]
        return np.asarray(1.0 / (1.0 + np.exp(-out)), dtype=np.float64)

    def predict_one(self, row: Sequence[float]) -> float:
        return float(self.predict(np.asarray([row], dtype=np.float64))[0])


Estimator = LogisticModel | ForestModel | BoostingModel | MLPModel


@dataclass(frozen=True)
class ScoringModel:
    """A published classifier: what it predicts, its inputs, estimator and decision threshold."""

    target: str  # "churn" or "potential"
    label: str  # how the training label was defined, for people
    kind: EstimatorKind
    inputs: tuple[InputFeature, ...]
    estimator: Estimator
    threshold: float  # predicted positive when probability >= threshold
    threshold_rule: str
    unknown_policy: str = "stop"
    metrics: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    created_at: str = ""
    code_version: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The raw fields a record must carry."""
        return tuple(spec.name for spec in self.inputs)

    @property
    def columns(self) -> tuple[str, ...]:
        return encoded_columns(self.inputs)

    def probability(self, record: Mapping[str, Any]) -> float:
        """P(positive) for one record of raw field values."""
        row = encode_record(self.inputs, record, unknown=self.unknown_policy)
        return self.estimator.predict_one(row)

    def probabilities(self, rows: FloatArray) -> FloatArray:
        """P(positive) for encoded rows (columns in `self.columns` order)."""
        if rows.ndim != 2 or rows.shape[1] != len(self.columns):
            msg = f"expected rows with {len(self.columns)} encoded columns, got shape {rows.shape}"
            raise FeatureError(msg)
        return self.estimator.predict(rows)
