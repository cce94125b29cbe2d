"""The bundle's ranker as JSON and back: plain values only, every field checked on the way
in (propensity models through the scoring codec, the similarity matrix by shape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules_store.bundle.scoring_codec import ModelFormatError, model_from_dict, model_to_dict
from rules_store.domain.ranking import SERVABLE, PropensityModels, RankerName, RankerSpec
from rules_store.domain.scoring import ScoringModel
from rules_store.errors import XsellError
from rules_store.validation import expect, finite_figure


class RankerFormatError(XsellError, ValueError):
    """A bundle's ranker is malformed."""


def ranker_to_dict(spec: RankerSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": spec.name, "figures": dict(spec.figures)}
    if spec.similarity is not None:
        doc["similarity"] = spec.similarity.tolist()
    if spec.propensity is not None:
        p = spec.propensity
        doc["propensity"] = {
            "models": [None if m is None else model_to_dict(m) for m in p.models],
            "rates": list(p.rates),
            "means": list(p.means),
            "input_names": list(p.input_names),
            "columns": list(p.columns),
        }
    return doc


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    return expect(value, kind, f"bundle: ranker.{where}", RankerFormatError)


def _floats(raw: Any, where: str, length: int) -> tuple[float, ...]:
    values = _expect(raw, list, where)
    if len(values) != length:
        msg = f"bundle: ranker.{where} has {len(values)} values, expected {length}"
        raise RankerFormatError(msg)
    return tuple(
        finite_figure(v, f"bundle: ranker.{where}[{i}]", RankerFormatError)
        for i, v in enumerate(values)
    )


def _propensity(raw: Any, items: tuple[str, ...], n_fields: int) -> PropensityModels:
    doc = _expect(raw, dict, "propensity")
    columns = tuple(
        _expect(c, int, "propensity.columns[]")
        for c in _expect(doc.get("columns"), list, "propensity.columns")
    )
    if any(not 0 <= c < n_fields for c in columns) or len(set(columns)) != len(columns):
        msg = (
            f"bundle: ranker.propensity.columns must be distinct profile columns 0..{n_fields - 1}"
        )
        raise RankerFormatError(msg)
    width = len(columns) + len(items)
    names = tuple(
        _expect(n, str, "propensity.input_names[]")
        for n in _expect(doc.get("input_names"), list, "propensity.input_names")
    )
    if len(names) != width:
        msg = f"bundle: ranker.propensity.input_names has {len(names)} names, expected {width}"
        raise RankerFormatError(msg)
    models_raw = _expect(doc.get("models"), list, "propensity.models")
    if len(models_raw) != len(items):
        msg = f"bundle: ranker.propensity.models has {len(models_raw)} models for {len(items)} products"
        raise RankerFormatError(msg)
    models: list[ScoringModel | None] = []
    for j, model in enumerate(models_raw):
        if model is None:
            models.append(None)
            continue
        try:
            parsed = model_from_dict(model, where=f"bundle: ranker.propensity.models[{j}]")
        except ModelFormatError as exc:
            raise RankerFormatError(str(exc)) from exc
        if parsed.feature_names != names:
            msg = f"bundle: ranker.propensity.models[{j}] reads other inputs than input_names"
            raise RankerFormatError(msg)
        models.append(parsed)
    rates = _floats(doc.get("rates"), "propensity.rates", len(items))
    if any(not 0.0 <= r <= 1.0 for r in rates):
        msg = "bundle: ranker.propensity.rates must be shares from 0 to 1"
        raise RankerFormatError(msg)
    means = _floats(doc.get("means"), "propensity.means", width)
    return PropensityModels(tuple(models), rates, means, names, columns)


def ranker_from_dict(raw: Any, items: tuple[str, ...], n_fields: int) -> RankerSpec:
    """Validate and build the ranker of a bundle with these items and profile fields."""
    doc = _expect(raw, dict, "document")
    name = doc.get("name")
    if name not in SERVABLE:
        msg = f"bundle: ranker.name is {name!r}; expected one of {list(SERVABLE)}"
        raise RankerFormatError(msg)
    similarity = None
    if name == "itemcf":
        rows = _expect(doc.get("similarity"), list, "similarity")
        n = len(items)
        if len(rows) != n:
            msg = f"bundle: ranker.similarity has {len(rows)} rows, expected {n}"
            raise RankerFormatError(msg)
        similarity = np.asarray(
            [_floats(r, f"similarity[{i}]", n) for i, r in enumerate(rows)], dtype=np.float64
        )
    propensity = None
    if name in ("propensity", "blend"):
        propensity = _propensity(doc.get("propensity"), items, n_fields)
    figures = _expect(doc.get("figures", {}), dict, "figures")
    ranker_name: RankerName = name
    return RankerSpec(ranker_name, similarity, propensity, figures)
