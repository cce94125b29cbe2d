"""A customer's value to the bank (seed 003) as a percentile among the training customers.

    value = 100 × share of training customers whose composite is at or below this one's
    composite = 0.50·P(financial assets) + 0.20·P(products held)
              + 0.15·P(tenure) + 0.15·P(activity)

where P(x) is the percentile of x among the training customers (0–1, ties share the
upper rank), financial assets are the catalog's financial-asset balances summed,
products held the catalog's held products, and tenure and activity the profile fields
the schema names (`customer_value` in the schema file; for the default layout 开户年限
and 签约消费渠道个数). Percentiles, not raw figures, so no single balance swamps the rest,
and the weights say what the bank values. Training stores each component's cut points
and the composite's; the stream and the batch outputs rank a customer against them, so
the same inputs give the same value everywhere.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COMPONENTS = ("financial_assets", "products_held", "tenure", "activity")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "financial_assets": 0.50,
    "products_held": 0.20,
    "tenure": 0.15,
    "activity": 0.15,
}
QUANTILES = 101  # cut points kept per component: every percentile


def percentile(value: float, cuts: Sequence[float]) -> float:
    """The share (0–1) of the cut points at or below `value`.

    >>> percentile(5, [1, 2, 5, 9]), percentile(0, [1, 2]), percentile(10, [1, 2])
    (0.75, 0.0, 1.0)
    """
    return bisect_right(cuts, value) / len(cuts) if cuts else 0.0


@dataclass(frozen=True)
class ValueModel:
    weights: Mapping[str, float]
    cuts: Mapping[str, tuple[float, ...]]  # component -> sorted training quantiles
    composite_cuts: tuple[float, ...]
    tenure_field: str | None
    activity_field: str | None

    def composite(self, inputs: Mapping[str, float]) -> float:
        """Weighted percentiles; a missing input (no profile yet) counts at the bottom."""
        # In COMPONENTS order whatever the weights' order (JSON sorts keys): same floats.
        return sum(
            self.weights[name]
            * (percentile(inputs[name], self.cuts[name]) if name in inputs else 0.0)
            for name in COMPONENTS
            if name in self.weights
        )

    def value(self, inputs: Mapping[str, float]) -> float:
        """The customer's value percentile, 0–100, rounded to one decimal."""
        return round(100 * percentile(self.composite(inputs), self.composite_cuts), 1)


def quantile_cuts(values: Sequence[float], n: int = QUANTILES) -> tuple[float, ...]:
    """`n` evenly spaced order statistics of `values` (nearest rank), sorted.

    >>> quantile_cuts([3, 1, 2, 4, 5], 3)
    (1.0, 3.0, 5.0)
    """
    ordered = sorted(values)
    if not ordered:
        return ()
    last = len(ordered) - 1
    return tuple(float(ordered[round(i * last / (n - 1))]) for i in range(n))


def customer_inputs(
    model: ValueModel,
    *,
    financial_assets: float,
    held: int,
    profile: Mapping[str, float] | None,
) -> dict[str, float]:
    """A customer's components from what the stream keeps: financial assets (unrounded, in
    catalog order), the held-products bitmask and the profile fields (None: no profile yet)."""
    inputs = {"financial_assets": financial_assets, "products_held": float(held.bit_count())}
    for role, name in (("tenure", model.tenure_field), ("activity", model.activity_field)):
        if name is not None and profile is not None and name in profile:
            inputs[role] = profile[name]
    return inputs
