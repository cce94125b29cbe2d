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
    composite = sum(
        # weight × (rank / QUANTILES), in the domain module's order, for equal floats
        weight
        * (
            np.searchsorted(cuts[name], np.asarray(columns[name], dtype=float), side="right")
            / QUANTILES
        )
        for name, weight in scaled.items()
    )
    composite_cuts = _cuts(np.asarray(composite, dtype=float))
    values = np.round(100 * np.searchsorted(composite_cuts, composite, side="right") / QUANTILES, 1)
    return ValueModel(scaled, cuts, composite_cuts, tenure_field, activity_field), values


def held_counts(masks: np.ndarray, n_items: int) -> np.ndarray:
    """Products held per customer from catalog bitmasks (int64; bit 63 is the sign bit)."""
    return sum(((masks >> i) & 1 for i in range(n_items)), np.zeros(len(masks), dtype=np.int64))


def value_from_data(data: RetailData) -> tuple[ValueModel, np.ndarray]:
    """The value model of a training snapshot and each of its customers' values."""
    columns = {
        "financial_assets": data.assets,
        "products_held": held_counts(data.masks, len(data.schema.products.names)).astype(float),
    }
    fields = data.schema.value_fields
    for role in ("tenure", "activity"):
        if role in fields:
            columns[role] = data.features[:, data.feature_names.index(fields[role])]
    return fit_value_model(
        columns, tenure_field=fields.get("tenure"), activity_field=fields.get("activity")
    )
