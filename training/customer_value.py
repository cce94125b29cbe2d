"""Fit the customer value model (rules_store/domain/customer_value.py) on training customers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rules_store.domain.customer_value import COMPONENTS, DEFAULT_WEIGHTS, QUANTILES, ValueModel
from training.encoding import RetailData


def _cuts(values: np.ndarray) -> tuple[float, ...]:
    # Nearest-rank order statistics, as quantile_cuts in the domain module computes them.
    ordered = np.sort(values)
    ranks = np.rint(np.arange(QUANTILES) * (len(ordered) - 1) / (QUANTILES - 1)).astype(int)
    return tuple(float(v) for v in ordered[ranks])


def fit_value_model(
    columns: Mapping[str, np.ndarray],
    *,
    tenure_field: str | None,
    activity_field: str | None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> tuple[ValueModel, np.ndarray]:
    """The model and every training customer's value (0–100), vectorised.

    A component without a column (a schema with no tenure field) drops out, and the other
    weights are rescaled to sum to 1.
    """
    present = {name: weights[name] for name in COMPONENTS if name in weights and name in columns}
    if not present:
        msg = f"customer value: none of {sorted(weights)} among the columns {sorted(columns)}"
        raise ValueError(msg)
    total = sum(present.values())
    scaled = {name: w / total for name, w in present.items()}
    cuts = {name: _cuts(np.asarray(columns[name], dtype=float)) for name in scaled}
    model = ValueModel(scaled, cuts, (), tenure_field, activity_field)
    composite = _composite(model, columns)
    model = ValueModel(scaled, cuts, _cuts(composite), tenure_field, activity_field)
    return model, _values(model, composite)


def _composite(model: ValueModel, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    # weight × (rank / QUANTILES), in the domain module's order, for equal floats
    return np.asarray(
        sum(
            model.weights[name]
            * (
                np.searchsorted(
                    model.cuts[name], np.asarray(columns[name], dtype=float), side="right"
                )
                / QUANTILES
            )
            for name in COMPONENTS
            if name in model.weights
        ),
        dtype=float,
    )


def _values(model: ValueModel, composite: np.ndarray) -> np.ndarray:
    ranks = np.searchsorted(model.composite_cuts, composite, side="right")
    return np.asarray(np.round(100 * ranks / len(model.composite_cuts), 1))


def held_counts(masks: np.ndarray, n_items: int) -> np.ndarray:
    """Products held per customer from catalog bitmasks (int64; bit 63 is the sign bit)."""
    return sum(((masks >> i) & 1 for i in range(n_items)), np.zeros(len(masks), dtype=np.int64))


def _columns(data: RetailData, tenure: str | None, activity: str | None) -> dict[str, np.ndarray]:
    columns = {
        "financial_assets": data.assets,
        "products_held": held_counts(data.masks, len(data.schema.products.names)).astype(float),
    }
    for component, name in (("tenure", tenure), ("activity", activity)):
        if name is not None and name in data.feature_names:
            columns[component] = data.features[:, data.feature_names.index(name)]
    return columns


def values_of(model: ValueModel, data: RetailData) -> np.ndarray:
    """Each customer's value under a trained model (batch outputs): the stream's figure."""
    columns = _columns(data, model.tenure_field, model.activity_field)
    missing = np.zeros(len(data.masks))  # a component the data lacks counts at the bottom
    full = {name: columns.get(name, missing - np.inf) for name in model.weights}
    return _values(model, _composite(model, full))


def value_from_data(data: RetailData) -> tuple[ValueModel, np.ndarray]:
    """The value model of a training snapshot and each of its customers' values."""
    tenure, activity = (
        data.schema.value_fields.get("tenure"),
        data.schema.value_fields.get("activity"),
    )
    return fit_value_model(
        _columns(data, tenure, activity), tenure_field=tenure, activity_field=activity
    )
