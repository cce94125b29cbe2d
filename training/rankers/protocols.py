"""Offline evaluation of rankers: hold-out and forward in time.

- Hold-out: a random `test_share` of the customers (at most `sample`) is set aside;
  rankers (and the per-segment rules they use) are fitted on the rest. Each test
  customer holding something has one held product hidden at random; the products not
  held after hiding are ranked, and the hidden one is the truth.
- Forward: rankers are fitted on the snapshot at T0; the truth is the products each
  customer opened between T0 and T1 (lacked at T0). MAP@7 is reported over the customers
  who opened something and over all evaluated customers (at most `sample`, at random).

The winner is the best MAP@7 of the forward protocol when there is one, else of the
hold-out, among the rankers a bundle can serve; blend ranks as propensity does, so on a
tie blend wins (its offers carry the rule as well).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rules_store.domain.catalog import Catalog
from rules_store.domain.ranking import (
    SERVABLE,
    Customers,
    IntArray,
    RankerName,
    Scorer,
    held_bits,
    top_offers,
)
from training.rankers.fit import RankerChoiceError, RankerParams, fit_rankers
from training.rankers.metrics import (
    coverage,
    gain_curve,
    per_product,
    ranking_metrics,
    with_offer,
)
from training.retail import TrainParams, mine_segments
from training.stages import Stages

Protocol = Literal["hold-out", "forward"]
TOP = 7
PRODUCT_K = 3  # per-product precision and recall: offered in the top 3


@dataclass
class Evaluation:
    protocol: Protocol
    items: tuple[str, ...]
    customers: int  # evaluated
    with_truth: int  # of which had something to find
    metrics: dict[str, dict[str, float]]  # ranker -> figure -> value
    per_product: dict[str, list[dict[str, float]]]  # ranker -> per item
    gains: dict[str, dict[str, list[tuple[float, float]]]]  # item -> ranker -> curve
    notes: dict[str, Any] = field(default_factory=dict)

    def winner(self) -> RankerName:
        candidates = [name for name in SERVABLE if name in self.metrics]
        if not candidates:
            msg = f"no ranker a bundle can serve among {list(self.metrics)}; add one of {list(SERVABLE)}"
            raise RankerChoiceError(msg)
        order = {name: i for i, name in enumerate(sorted(SERVABLE, key=lambda n: n != "blend"))}
        return max(candidates, key=lambda n: (self.metrics[n]["MAP@7"], -order[n]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "customers": self.customers,
            "with_truth": self.with_truth,
            "metrics": self.metrics,
            "per_product": {
                name: {item: figures for item, figures in zip(self.items, rows, strict=True)}
                for name, rows in self.per_product.items()
            },
            "notes": self.notes,
        }


def _score(
    protocol: Protocol,
    rankers: dict[RankerName, Scorer],
    customers: Customers,
    truth: IntArray,
    items: tuple[str, ...],
    stages: Stages,
) -> Evaluation:
    n_items = len(items)
    metrics: dict[str, dict[str, float]] = {}
    products: dict[str, list[dict[str, float]]] = {}
    gains: dict[str, dict[str, list[tuple[float, float]]]] = {item: {} for item in items}
    lacking = held_bits(customers.held, n_items) == 0
    for name, scorer in rankers.items():
        with stages.stage(f"score {name} ({len(customers):,} customers)"):
            scores = scorer.scores(customers)
            top = top_offers(scores, customers.held, TOP)
        figures = ranking_metrics(top, truth)
        if protocol == "forward":
            figures["MAP@7 all"] = ranking_metrics(top, truth, ks=(7,), over_all=True)["MAP@7"]
        figures["coverage@3"] = coverage(top, n_items)
        figures["with offer"] = with_offer(top)
        metrics[name] = figures
        products[name] = per_product(top, truth, n_items, PRODUCT_K)
        for j, item in enumerate(items):
            finite = np.where(np.isfinite(scores[:, j]), scores[:, j], -1e300)
            gains[item][name] = gain_curve(finite, lacking[:, j], ((truth >> j) & 1).astype(bool))
    return Evaluation(
        protocol, items, len(customers), int((truth != 0).sum()), metrics, products, gains
    )


def _sample(n: int, limit: int, rng: np.random.Generator) -> IntArray:
    return np.sort(rng.choice(n, size=min(n, limit), replace=False)).astype(np.int64)


def hide_one(held: IntArray, n_items: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """(holdings with one held product hidden, that product's bit), a random one per row."""
    bits = held_bits(held, n_items)
    hidden = np.argmax(rng.random(bits.shape) * bits, axis=1)
    bit = (np.int64(1) << hidden.astype(np.int64)) * (held != 0)
    return held & ~bit, bit


def hold_out(
    customers: Customers,
    catalog: Catalog,
    feature_names: tuple[str, ...],
    n_segments: int,
    train: TrainParams,
    params: RankerParams,
    *,
    test_share: float = 0.2,
    sample: int = 100_000,
    stages: Stages | None = None,
) -> Evaluation:
    stages = stages or Stages()
    rng = np.random.default_rng(params.seed)
    order = rng.permutation(len(customers))
    n_test = min(max(1, int(len(customers) * test_share)), sample)
    test, fit = np.sort(order[:n_test]), np.sort(order[n_test:])
    fitted = customers.take(fit)
    with stages.stage(f"mine rules on {len(fit):,} training customers"):
        segments = mine_segments(
            fitted.held, fitted.segments, n_segments, train, len(catalog.names)
        )
    rankers, notes = fit_rankers(fitted, catalog, feature_names, segments, params, stages=stages)
    tested = customers.take(test)
    tested = tested.take(np.flatnonzero(tested.held != 0))
    hidden_held, truth = hide_one(tested.held, len(catalog.names), rng)
    hidden = Customers(tested.features, hidden_held, tested.segments)
    evaluation = _score("hold-out", rankers, hidden, truth, catalog.names, stages)
    evaluation.notes = notes | {"trained_on": len(fit), "test_share": test_share}
    return evaluation


def forward(
    customers: Customers,
    opened: IntArray,
    catalog: Catalog,
    feature_names: tuple[str, ...],
    n_segments: int,
    train: TrainParams,
    params: RankerParams,
    *,
    sample: int = 100_000,
    stages: Stages | None = None,
) -> Evaluation:
    """`opened`: per customer, the products opened after T0 that they lacked at T0."""
    stages = stages or Stages()
    rng = np.random.default_rng(params.seed)
    with stages.stage(f"mine rules on {len(customers):,} customers at T0"):
        segments = mine_segments(
            customers.held, customers.segments, n_segments, train, len(catalog.names)
        )
    rankers, notes = fit_rankers(customers, catalog, feature_names, segments, params, stages=stages)
    rows = _sample(len(customers), sample, rng)
    evaluation = _score(
        "forward",
        rankers,
        customers.take(rows),
        opened[rows] & ~customers.held[rows],
        catalog.names,
        stages,
    )
    evaluation.notes = notes | {"trained_on": len(customers)}
    return evaluation
