"""A scoring model as JSON and back: plain values only, every field checked on the way in.

Used for a training run's `model.json` and for the bundle's `churn_model` and
`potential_model`. Besides types and shapes, the loader checks what evaluation relies
on: feature indices inside the row, children after their parent (so a traversal always
ends) and finite numbers. A malformed document is refused with the path to the fault;
`model_to_json` refuses to write one that the loader would refuse.
"""

from __future__ import annotations

from typing import Any, cast

from rules_store.domain.scoring import (
    BoostingModel,
    EstimatorKind,
    ForestModel,
    InputFeature,
    LogisticModel,
    MLPModel,
    ScoringModel,
    Tree,
    encoded_columns,
)
from rules_store.errors import XsellError
from rules_store.validation import checked_json, expect, find_non_finite, finite_figure

MODEL_FORMAT_VERSION = 1
KINDS: tuple[EstimatorKind, ...] = (
    "logistic_regression",
    "random_forest",
    "hist_gradient_boosting",
    "mlp",
)


class ModelFormatError(XsellError, ValueError):
    """A model document is malformed or not a scoring model at all."""


def _tree_to_dict(tree: Tree) -> dict[str, list[Any]]:
    return {
        "feature": list(tree.feature),
        "threshold": list(tree.threshold),
        "left": list(tree.left),
        "right": list(tree.right),
        "value": list(tree.value),
    }


def model_to_dict(model: ScoringModel) -> dict[str, Any]:
    estimator = model.estimator
    if isinstance(estimator, LogisticModel):
        body: dict[str, Any] = {
            "mean": list(estimator.mean),
            "scale": list(estimator.scale),
            "coef": list(estimator.coef),
            "intercept": estimator.intercept,
        }
    elif isinstance(estimator, ForestModel):
        body = {"trees": [_tree_to_dict(t) for t in estimator.trees]}
    elif isinstance(estimator, MLPModel):
        body = {
            "mean": list(estimator.mean),
            "scale": list(estimator.scale),
            "weights": [[list(row) for row in layer] for layer in estimator.weights],
            "biases": [list(b) for b in estimator.biases],
        }
    else:
        body = {
            "baseline": estimator.baseline,
            "trees": [_tree_to_dict(t) for t in estimator.trees],
        }
    return {
        "model_format_version": MODEL_FORMAT_VERSION,
        "target": model.target,
        "label": model.label,
        "kind": model.kind,
        "inputs": [
            {"name": s.name, "kind": s.kind, "values": list(s.values)}
            | ({"learned": True} if s.learned else {})  # only then: older models keep their bytes
            for s in model.inputs
        ],
        "estimator": body,
        "threshold": model.threshold,
        "threshold_rule": model.threshold_rule,
        "unknown_policy": model.unknown_policy,
        "metrics": model.metrics,
        "fingerprint": model.fingerprint,
        "created_at": model.created_at,
        "code_version": model.code_version,
    }


def model_to_json(model: ScoringModel) -> bytes:
    """The model as UTF-8 JSON, read back with the loader's checks before it is written."""
    return checked_json(model_to_dict(model), model_from_dict, ModelFormatError, "model")


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    return expect(value, kind, where, ModelFormatError)


def _number(value: Any, where: str) -> float:
    return finite_figure(value, where, ModelFormatError)


def _numbers(raw: Any, where: str, length: int | None = None) -> tuple[float, ...]:
    values = _expect(raw, list, where)
    if length is not None and len(values) != length:
        msg = f"{where} has {len(values)} values, expected {length}"
        raise ModelFormatError(msg)
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(values))


def _ints(raw: Any, where: str, length: int) -> tuple[int, ...]:
    values = _expect(raw, list, where)
    if len(values) != length:
        msg = f"{where} has {len(values)} values, expected {length}"
        raise ModelFormatError(msg)
    return tuple(_expect(v, int, f"{where}[{i}]") for i, v in enumerate(values))


def _tree(raw: Any, where: str, width: int) -> Tree:
    doc = _expect(raw, dict, where)
    left_raw = _expect(doc.get("left"), list, f"{where}.left")
    n = len(left_raw)
    if n == 0:
        msg = f"{where} has no nodes"
        raise ModelFormatError(msg)
    left = _ints(left_raw, f"{where}.left", n)
    right = _ints(doc.get("right"), f"{where}.right", n)
    feature = _ints(doc.get("feature"), f"{where}.feature", n)
    threshold = _numbers(doc.get("threshold"), f"{where}.threshold", n)
    value = _numbers(doc.get("value"), f"{where}.value", n)
    for i in range(n):
        if left[i] < 0:
            continue  # a leaf; its feature and threshold are never read
        if not (i < left[i] < n and i < right[i] < n):
            msg = f"{where} node {i}: children {left[i]}, {right[i]} must come after it and exist"
            raise ModelFormatError(msg)
        if not 0 <= feature[i] < width:
            msg = f"{where} node {i}: feature {feature[i]} outside the {width} input columns"
            raise ModelFormatError(msg)
    return Tree(feature, threshold, left, right, value)


def _trees(raw: Any, where: str, width: int) -> tuple[Tree, ...]:
    trees = _expect(raw, list, where)
    if not trees:
        msg = f"{where} is empty"
        raise ModelFormatError(msg)
    return tuple(_tree(t, f"{where}[{i}]", width) for i, t in enumerate(trees))


def _inputs(raw: Any, where: str) -> tuple[InputFeature, ...]:
    inputs = []
    for i, item in enumerate(_expect(raw, list, where)):
        spec = _expect(item, dict, f"{where}[{i}]")
        kind = spec.get("kind")
        if kind not in ("number", "category"):
            msg = f"{where}[{i}].kind is {kind!r}; expected 'number' or 'category'"
            raise ModelFormatError(msg)
        values = tuple(
            _expect(v, str, f"{where}[{i}].values[]")
            for v in _expect(spec.get("values", []), list, f"{where}[{i}].values")
        )
        if kind == "category" and not values:
            msg = f"{where}[{i}] is a category without values"
            raise ModelFormatError(msg)
        learned = _expect(spec.get("learned", False), bool, f"{where}[{i}].learned")
        inputs.append(
            InputFeature(
                _expect(spec.get("name"), str, f"{where}[{i}].name"), kind, values, learned
            )
        )
    names = [s.name for s in inputs]
    if not inputs or len(set(names)) != len(names):
        msg = f"{where} must list each feature once, found {names}"
        raise ModelFormatError(msg)
    return tuple(inputs)


def _scale(body: dict[str, Any], at: str, width: int) -> tuple[float, ...]:
    scale = _numbers(body.get("scale"), f"{at}.scale", width)
    if any(s <= 0 for s in scale):
        msg = f"{at}.scale must be positive (it divides)"
        raise ModelFormatError(msg)
    return scale


def _mlp(body: dict[str, Any], at: str, width: int) -> MLPModel:
    """Layers chained input width -> ... -> 1 output; a bias per layer output."""
    layers = _expect(body.get("weights"), list, f"{at}.weights")
    biases = _expect(body.get("biases"), list, f"{at}.biases")
    if not layers or len(biases) != len(layers):
        msg = f"{at} needs as many bias vectors as weight layers, at least one"
        raise ModelFormatError(msg)
    weights, bias_values, fan_in = [], [], width
    for i, (layer, bias) in enumerate(zip(layers, biases, strict=True)):
        rows = _expect(layer, list, f"{at}.weights[{i}]")
        if len(rows) != fan_in or not rows:
            msg = f"{at}.weights[{i}] has {len(rows)} rows, expected {fan_in}"
            raise ModelFormatError(msg)
        fan_out = len(_expect(rows[0], list, f"{at}.weights[{i}][0]"))
        weights.append(
            tuple(_numbers(r, f"{at}.weights[{i}][{j}]", fan_out) for j, r in enumerate(rows))
        )
        bias_values.append(_numbers(bias, f"{at}.biases[{i}]", fan_out))
        fan_in = fan_out
    if fan_in != 1:
        msg = f"{at}: the last layer has {fan_in} outputs, expected 1"
        raise ModelFormatError(msg)
    return MLPModel(
        _numbers(body.get("mean"), f"{at}.mean", width),
        _scale(body, at, width),
        tuple(weights),
        tuple(bias_values),
    )


def model_from_dict(raw: Any, *, where: str = "model") -> ScoringModel:
    """Validate and build a scoring model; refuses anything that is not exactly one."""
    doc = _expect(raw, dict, where)
    version = doc.get("model_format_version")
    if version != MODEL_FORMAT_VERSION:
        msg = f"{where}.model_format_version {version!r} is not supported (this reads {MODEL_FORMAT_VERSION})"
        raise ModelFormatError(msg)
    kind = doc.get("kind")
    if kind not in KINDS:
        msg = f"{where}.kind is {kind!r}; expected one of {list(KINDS)}"
        raise ModelFormatError(msg)
    inputs = _inputs(doc.get("inputs"), f"{where}.inputs")
    width = len(encoded_columns(inputs))
    body = _expect(doc.get("estimator"), dict, f"{where}.estimator")
    at = f"{where}.estimator"
    estimator: LogisticModel | ForestModel | BoostingModel | MLPModel
    if kind == "mlp":
        estimator = _mlp(body, at, width)
    elif kind == "logistic_regression":
        scale = _scale(body, at, width)
        estimator = LogisticModel(
            _numbers(body.get("mean"), f"{at}.mean", width),
            scale,
            _numbers(body.get("coef"), f"{at}.coef", width),
            _number(body.get("intercept"), f"{at}.intercept"),
        )
    elif kind == "random_forest":
        estimator = ForestModel(_trees(body.get("trees"), f"{at}.trees", width))
    else:
        estimator = BoostingModel(
            _number(body.get("baseline"), f"{at}.baseline"),
            _trees(body.get("trees"), f"{at}.trees", width),
        )
    threshold = _number(doc.get("threshold"), f"{where}.threshold")
    if not 0.0 <= threshold <= 1.0:
        msg = f"{where}.threshold {threshold} is not a probability"
        raise ModelFormatError(msg)
    problem = find_non_finite(doc, where)  # metrics, and anything not checked above
    if problem is not None:
        raise ModelFormatError(problem)
    return ScoringModel(
        target=_expect(doc.get("target"), str, f"{where}.target"),
        label=_expect(doc.get("label", ""), str, f"{where}.label"),
        kind=cast(EstimatorKind, kind),
        inputs=inputs,
        estimator=estimator,
        threshold=threshold,
        threshold_rule=_expect(doc.get("threshold_rule", ""), str, f"{where}.threshold_rule"),
        unknown_policy=_expect(doc.get("unknown_policy", "stop"), str, f"{where}.unknown_policy"),
        metrics=_expect(doc.get("metrics", {}), dict, f"{where}.metrics"),
        fingerprint=_expect(doc.get("fingerprint", ""), str, f"{where}.fingerprint"),
        created_at=_expect(doc.get("created_at", ""), str, f"{where}.created_at"),
        code_version=_expect(doc.get("code_version", ""), str, f"{where}.code_version"),
    )
