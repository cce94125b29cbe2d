"""Fit the customer value model (rules_store/domain/customer_value.py) on training customers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rules_store.domain.customer_value import DEFAULT_WEIGHTS, QUANTILES, ValueModel


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
    present = {name: w for name, w in weights.items() if name in columns}
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
