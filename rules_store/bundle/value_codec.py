"""The customer value model as JSON and back: weights and sorted cut points, checked."""

from __future__ import annotations

import itertools
from typing import Any

from rules_store.domain.customer_value import COMPONENTS, ValueModel
from rules_store.validation import expect, finite_figure


def value_model_to_dict(model: ValueModel) -> dict[str, Any]:
    return {
        "weights": dict(model.weights),
        "cuts": {name: list(cuts) for name, cuts in model.cuts.items()},
        "composite_cuts": list(model.composite_cuts),
        "tenure_field": model.tenure_field,
        "activity_field": model.activity_field,
    }


def _cuts(raw: Any, where: str, error: type[Exception]) -> tuple[float, ...]:
    values = tuple(
        finite_figure(v, f"{where}[{i}]", error)
        for i, v in enumerate(expect(raw, list, where, error))
    )
    if not values or any(a > b for a, b in itertools.pairwise(values)):
        msg = f"{where}: expected a non-empty ascending list of cut points"
        raise error(msg)
    return values


def value_model_from_dict(raw: Any, where: str, error: type[Exception]) -> ValueModel:
    doc = expect(raw, dict, where, error)
    weights = {
        str(name): finite_figure(w, f"{where}.weights.{name}", error)
        for name, w in expect(doc.get("weights"), dict, f"{where}.weights", error).items()
    }
    unknown = sorted(set(weights) - set(COMPONENTS))
    if not weights or unknown or any(w < 0 for w in weights.values()):
        msg = f"{where}.weights: expected non-negative weights of some of {list(COMPONENTS)}"
        raise error(msg)
    cuts_doc = expect(doc.get("cuts"), dict, f"{where}.cuts", error)
    if set(cuts_doc) != set(weights):
        msg = f"{where}.cuts: expected cut points for exactly {sorted(weights)}"
        raise error(msg)
    fields = {}
    for role in ("tenure_field", "activity_field"):
        value = doc.get(role)
        fields[role] = None if value is None else expect(value, str, f"{where}.{role}", error)
    return ValueModel(
        weights=weights,
        cuts={name: _cuts(cuts_doc[name], f"{where}.cuts.{name}", error) for name in weights},
        composite_cuts=_cuts(doc.get("composite_cuts"), f"{where}.composite_cuts", error),
        **fields,
    )
