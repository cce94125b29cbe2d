"""The bundle as JSON and back: plain values only, every field checked on the way in.

Nothing here can execute code: no pickle, no class names taken from the data. A value
of the wrong type or shape, or a number that is not finite, is refused with the path to
it, on the way in and (`bundle_to_json`) on the way out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rules_store.bundle.model import FORMAT_VERSION, Bundle, SegmentRules
from rules_store.bundle.ranker_codec import RankerFormatError, ranker_from_dict, ranker_to_dict
from rules_store.bundle.schema import Schema, SchemaError, schema_from_dict
from rules_store.bundle.scoring_codec import ModelFormatError, model_from_dict, model_to_dict
from rules_store.bundle.value_codec import value_model_from_dict, value_model_to_dict
from rules_store.domain.rules import RULE_FIELDS, Rule
from rules_store.domain.scoring import ScoringModel
from rules_store.domain.segments import SegmentModel
from rules_store.errors import XsellError
from rules_store.validation import checked_json, expect, find_non_finite, finite_figure, not_finite


class BundleFormatError(XsellError, ValueError):
    """A bundle document is malformed, of another format version, or not a bundle at all."""


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no Infinity


def _rule_to_list(rule: Rule) -> list[Any]:
    return [
        rule.antecedents,
        rule.consequents,
        rule.antecedent_support,
        rule.consequent_support,
        rule.support,
        rule.confidence,
        rule.lift,
        rule.leverage,
        _finite_or_none(rule.conviction),
    ]


CORPORATE_MODELS = ("churn_model", "potential_model")


def bundle_to_dict(bundle: Bundle) -> dict[str, Any]:
    model = bundle.segment_model
    doc = {
        "format_version": bundle.format_version,
        "kind": "retail",
        "items": list(bundle.items),  # the catalog's names, for readers of the rules
        "schema": bundle.schema.to_dict(),  # fields and products
        "unknown_policy": bundle.unknown_policy,
        "segment_model": {
            "features": list(model.features),
            "mean": model.mean.tolist(),
            "scale": model.scale.tolist(),
            "centroids": model.centroids.tolist(),
        },
        "rule_fields": list(RULE_FIELDS),
        "segments": [
            {
                "segment": s.segment,
                "customers": s.customers,
                "rules": [_rule_to_list(r) for r in s.rules],
                "pruned": [_rule_to_list(r) for r in s.pruned],
                "popularity": [[item, rate] for item, rate in s.popularity],
            }
            for s in bundle.segments
        ],
        "params": bundle.params,
        "metrics": bundle.metrics,
        "fingerprint": bundle.fingerprint,
        "created_at": bundle.created_at,
        "code_version": bundle.code_version,
    }
    # Only when present, so a bundle without them keeps its bytes (and version id).
    for name in CORPORATE_MODELS:
        scoring = getattr(bundle, name)
        if scoring is not None:
            doc[name] = model_to_dict(scoring)
    if bundle.value_model is not None:
        doc["customer_value"] = value_model_to_dict(bundle.value_model)
    if bundle.ranker is not None:
        doc["ranker"] = ranker_to_dict(bundle.ranker)
    return doc


def bundle_to_json(bundle: Bundle) -> bytes:
    """The bundle's canonical bytes (UTF-8 JSON, sorted keys), the one way a bundle is stored.

    Read back with the readers' checks first (`checked_json`): a bundle no reader would
    take never reaches Redis or a file.
    """
    return checked_json(bundle_to_dict(bundle), bundle_from_dict, BundleFormatError, "bundle")


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    return expect(value, kind, f"bundle: {where}", BundleFormatError)


def _finite(value: Any, where: str) -> float:
    return finite_figure(value, f"bundle: {where}", BundleFormatError)


def _rule_from_list(raw: Any, n_items: int, where: str) -> Rule:
    values = _expect(raw, list, where)
    if len(values) != len(RULE_FIELDS):
        msg = f"bundle: {where} has {len(values)} fields, expected {len(RULE_FIELDS)}"
        raise BundleFormatError(msg)
    antecedents = _expect(values[0], int, f"{where}.antecedents")
    consequents = _expect(values[1], int, f"{where}.consequents")
    limit = 1 << n_items
    if not (0 < antecedents < limit and 0 < consequents < limit) or antecedents & consequents:
        msg = f"bundle: {where} has itemsets outside the {n_items}-item catalog or overlapping"
        raise BundleFormatError(msg)
    numbers = [
        _finite(v, f"{where}.{name}") for v, name in zip(values[2:8], RULE_FIELDS[2:8], strict=True)
    ]
    # An infinite conviction (confidence 1) is stored as null, the only way JSON can say it.
    conviction = math.inf if values[8] is None else _finite(values[8], f"{where}.conviction")
    support_a, support_c, support, confidence, lift, leverage = numbers
    return Rule(
        antecedents,
        consequents,
        support_a,
        support_c,
        support,
        confidence,
        lift,
        leverage,
        conviction,
    )


def _matrix(raw: Any, where: str, shape: tuple[int | None, ...]) -> np.ndarray:
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        msg = f"bundle: {where} is not a numeric array"
        raise BundleFormatError(msg) from exc
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        msg = f"bundle: {where} has shape {array.shape}, expected {shape}"
        raise BundleFormatError(msg)
    if not np.isfinite(array).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        at = where + "".join(f"[{i}]" for i in first)
        msg = f"bundle: {where} holds non-finite numbers ({not_finite(at, float(array[first]))})"
        raise BundleFormatError(msg)
    return array


def _positive(array: np.ndarray, where: str) -> np.ndarray:
    if (array <= 0).any():
        msg = f"bundle: {where} must be positive (it divides)"
        raise BundleFormatError(msg)
    return array


def _popularity(raw: Any, n_items: int, where: str) -> tuple[tuple[int, float], ...]:
    entries = []
    for j, entry in enumerate(_expect(raw, list, where)):
        pair = _expect(entry, list, f"{where}[{j}]")
        if len(pair) != 2:
            msg = f"bundle: {where}[{j}] should be [item, rate], found {len(pair)} values"
            raise BundleFormatError(msg)
        item = _expect(pair[0], int, f"{where}[{j}].item")
        rate = _finite(pair[1], f"{where}[{j}].rate")
        if not 0 <= item < n_items or not 0.0 <= rate <= 1.0:
            msg = f"bundle: {where}[{j}] = {pair!r} is outside the catalog or not a share"
            raise BundleFormatError(msg)
        entries.append((item, rate))
    if len({item for item, _ in entries}) != len(entries):
        msg = f"bundle: {where} lists an item twice"
        raise BundleFormatError(msg)
    return tuple(entries)


def bundle_from_dict(raw: Any) -> Bundle:
    """Validate and build a bundle; refuses anything that is not exactly a bundle."""
    doc = _expect(raw, dict, "document")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        msg = f"bundle: format_version {version!r} is not supported (this reads {FORMAT_VERSION})"
        raise BundleFormatError(msg)
    items = tuple(_expect(i, str, "items[]") for i in _expect(doc.get("items"), list, "items"))
    try:
        schema = schema_from_dict(
            _expect(doc.get("schema"), dict, "schema"), source="bundle schema"
        )
    except SchemaError as exc:
        hint = (
            "; it was written before catalogs were data (its schema has no products): "
            "retrain it with this release"
            if "products" not in doc["schema"]
            else ""
        )
        raise BundleFormatError(f"{exc}{hint}") from exc
    _check_catalog(doc, items, schema)
    model_raw = _expect(doc.get("segment_model"), dict, "segment_model")
    features = tuple(
        _expect(f, str, "segment_model.features[]")
        for f in _expect(model_raw.get("features"), list, "segment_model.features")
    )
    n = len(features)
    centroids = _matrix(model_raw.get("centroids"), "segment_model.centroids", (None, n))
    model = SegmentModel(
        features,
        _matrix(model_raw.get("mean"), "segment_model.mean", (n,)),
        _positive(
            _matrix(model_raw.get("scale"), "segment_model.scale", (n,)), "segment_model.scale"
        ),
        centroids,
    )
    segments = []
    for i, entry in enumerate(_expect(doc.get("segments"), list, "segments")):
        where = f"segments[{i}]"
        s = _expect(entry, dict, where)
        if _expect(s.get("segment"), int, f"{where}.segment") != i:
            msg = (
                f"bundle: {where} is numbered {s.get('segment')}; segments must be 0..k-1 in order"
            )
            raise BundleFormatError(msg)
        popularity = _popularity(s.get("popularity"), len(items), f"{where}.popularity")
        segments.append(
            SegmentRules(
                segment=i,
                customers=_expect(s.get("customers"), int, f"{where}.customers"),
                rules=tuple(
                    _rule_from_list(r, len(items), f"{where}.rules[{j}]")
                    for j, r in enumerate(_expect(s.get("rules"), list, f"{where}.rules"))
                ),
                popularity=popularity,
                pruned=tuple(
                    _rule_from_list(r, len(items), f"{where}.pruned[{j}]")
                    for j, r in enumerate(_expect(s.get("pruned", []), list, f"{where}.pruned"))
                ),
            )
        )
    if len(segments) != model.n_segments:
        msg = f"bundle: {len(segments)} segment rule sets for {model.n_segments} centroids"
        raise BundleFormatError(msg)
    churn_model, potential_model = (_corporate_model(doc, name) for name in CORPORATE_MODELS)
    ranker = None
    if doc.get("ranker") is not None:
        try:
            ranker = ranker_from_dict(doc["ranker"], items, len(features))
        except RankerFormatError as exc:
            raise BundleFormatError(str(exc)) from exc
    problem = find_non_finite(doc, "")  # params, metrics, and anything not checked above
    if problem is not None:
        msg = f"bundle: {problem.removeprefix('.')}"
        raise BundleFormatError(msg)
    value_model = (
        None  # bundles trained before the customer value had none
        if doc.get("customer_value") is None
        else value_model_from_dict(
            doc["customer_value"], "bundle: customer_value", BundleFormatError
        )
    )
    return Bundle(
        ranker=ranker,
        churn_model=churn_model,
        potential_model=potential_model,
        value_model=value_model,
        schema=schema,
        unknown_policy=_expect(doc.get("unknown_policy"), str, "unknown_policy"),
        segment_model=model,
        segments=tuple(segments),
        params=_expect(doc.get("params", {}), dict, "params"),
        metrics=_expect(doc.get("metrics", {}), dict, "metrics"),
        fingerprint=_expect(doc.get("fingerprint", ""), str, "fingerprint"),
        created_at=_expect(doc.get("created_at", ""), str, "created_at"),
        code_version=_expect(doc.get("code_version", ""), str, "code_version"),
    )


def _corporate_model(doc: dict[str, Any], name: str) -> ScoringModel | None:
    if doc.get(name) is None:
        return None  # bundles written before the corporate models had none
    try:
        return model_from_dict(doc[name], where=name)
    except ModelFormatError as exc:
        msg = f"bundle: {exc}"
        raise BundleFormatError(msg) from exc


def _check_catalog(doc: dict[str, Any], items: tuple[str, ...], schema: Schema) -> None:
    """The rules' item list is the schema's catalog.

    A bundle written before catalogs were data has no `products` in its schema: it is read
    with the default catalog (seed 001's), which its `items` and `item_balances` must match.
    """
    catalog = schema.products
    if items != catalog.names:
        msg = (
            f"bundle: items {list(items)} differ from its schema's products "
            f"{list(catalog.names)}; retrain it with this release"
        )
        raise BundleFormatError(msg)
    written = _expect(doc.get("item_balances", {}), dict, "item_balances")
    derived = {p.name: list(p.balances) for p in catalog.products}
    if written and written != derived:
        msg = (
            f"bundle: item_balances {written} differ from the catalog {derived}; "
            "retrain it with this release"
        )
        raise BundleFormatError(msg)
