"""Evaluate the rankers on a training snapshot and put the winner, with its figures,
into the bundle (refitted on every customer of the snapshot)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from rules_store.bundle.model import Bundle
from rules_store.domain.catalog import Catalog
from rules_store.domain.ranking import Customers, RankerSpec
from training.encoding import RetailData
from training.rankers.fit import RankerParams, fit_rankers, spec_of
from training.rankers.protocols import Evaluation, forward, hold_out
from training.retail import TrainParams
from training.stages import Stages


@dataclass(frozen=True)
class EvaluationPlan:
    rankers: RankerParams
    train: TrainParams
    sample: int = 100_000  # customers scored per protocol, at most
    test_share: float = 0.2


def evaluate_rankers(
    data: RetailData,
    labels: npt.NDArray[np.int64],
    n_segments: int,
    catalog: Catalog,
    plan: EvaluationPlan,
    *,
    opened: npt.NDArray[np.int64] | None = None,
    stages: Stages | None = None,
) -> list[Evaluation]:
    """Hold-out always; forward in time too when `opened` (the truth after T0) is given."""
    customers = Customers(data.features, data.masks, labels)
    found = [
        hold_out(
            customers,
            catalog,
            data.feature_names,
            n_segments,
            plan.train,
            plan.rankers,
            test_share=plan.test_share,
            sample=plan.sample,
            stages=stages,
        )
    ]
    if opened is not None:
        found.append(
            forward(
                customers,
                opened,
                catalog,
                data.feature_names,
                n_segments,
                plan.train,
                plan.rankers,
                sample=plan.sample,
                stages=stages,
            )
        )
    return found


def deciding(evaluations: list[Evaluation]) -> Evaluation:
    """Forward in time decides when there is one (the honest protocol), else hold-out."""
    return evaluations[-1]


def figures_of(name: str, evaluations: list[Evaluation]) -> dict[str, Any]:
    decision = deciding(evaluations)
    return {
        "chosen_by": f"{decision.protocol} MAP@7",
        "compared": {n: m["MAP@7"] for n, m in decision.metrics.items()},
        **{e.protocol: e.metrics[name] for e in evaluations},
    }


def with_chosen_ranker(
    bundle: Bundle,
    data: RetailData,
    labels: npt.NDArray[np.int64],
    evaluations: list[Evaluation],
    params: RankerParams,
    *,
    stages: Stages | None = None,
) -> Bundle:
    """The bundle serving the winner, refitted on all of `data` with the bundle's rules."""
    winner = deciding(evaluations).winner()
    figures = figures_of(winner, evaluations)
    spec: RankerSpec
    if winner in ("popular", "rules"):
        spec = RankerSpec(winner, figures=figures)
    else:
        fitted, _ = fit_rankers(
            Customers(data.features, data.masks, labels),
            bundle.catalog,
            data.feature_names,
            bundle.segments,
            replace(params, names=(winner,)),
            stages=stages,
        )
        spec = spec_of(fitted[winner], figures)
    return replace(bundle, ranker=spec)
