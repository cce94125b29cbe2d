"""Rankers at a bank's scale: training, batch scoring and per-customer stream scoring,
each with a baseline measured in the same run (today's rules path), so a noisy shared
machine hits both sides.

1. training on N customers (default 1,000,000): segmentation + rule mining (today's
   `train retail`, the baseline) and then every ranker (`fit_rankers`), per ranker;
2. batch scoring of the N customers: each servable ranker's scores and top 3, and the
   whole `cross_sell` (offers and their evidence) with the blend bundle against the same
   with the rules bundle;
3. stream: `OfferIndex.offers` for one changed customer at a time (what the worker calls
   per event), blend against rules, in microseconds per customer; and the worker's index,
   which gives a profile-dependent ranker's events the rules' offers;
4. usercf's pool index against an exact search over every training customer of the
   segment, on a smaller hold-out (MAP@7 and time).

Run: .venv/bin/python bench/rankers.py              (1,000,000 customers; minutes)
     .venv/bin/python bench/rankers.py --customers 100000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.table import Table

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.offers import OfferIndex
from rules_store.domain.ranking import SERVABLE, Customers, top_offers
from rules_store.domain.segments import SegmentModel
from training.batch import cross_sell
from training.encoding import prepare_retail
from training.generate import generate_retail
from training.rankers.fit import RankerParams, fit_rankers, spec_of
from training.rankers.protocols import hold_out
from training.retail import TrainParams, mine_segments
from training.segmentation import fit_segments
from training.stages import Stages

console = Console()


def _timed(label: str, seconds: dict[str, float]) -> Stages:
    return Stages(
        on_start=lambda name: console.log(f"{label}: {name} ..."),
        on_end=lambda name, s: seconds.__setitem__(f"{label}: {name}", s),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--stream-customers", type=int, default=5_000)
    parser.add_argument("--usercf-customers", type=int, default=60_000)
    args = parser.parse_args()
    seconds: dict[str, float] = {}

    console.log(f"generating {args.customers:,} customers")
    frame = generate_retail(args.customers, seed=7, dirty_share=0.0)
    data = prepare_retail(frame, RETAIL_SCHEMA, source="bench")
    del frame
    catalog = RETAIL_SCHEMA.products
    params = TrainParams(segments=4)

    started = time.perf_counter()
    segmentation = fit_segments(data.features, data.feature_names, k=4, seed=7)
    segments = mine_segments(data.masks, segmentation.labels, 4, params, len(catalog.names))
    baseline_train = time.perf_counter() - started
    customers = Customers(data.features, data.masks, segmentation.labels)
    started = time.perf_counter()
    rankers, notes = fit_rankers(
        customers,
        catalog,
        data.feature_names,
        segments,
        RankerParams(),
        stages=_timed("fit", seconds),
    )
    rankers_train = time.perf_counter() - started

    bundle = Bundle(
        schema=RETAIL_SCHEMA,
        unknown_policy="stop",
        segment_model=SegmentModel(
            segmentation.model.features,
            segmentation.model.mean,
            segmentation.model.scale,
            segmentation.model.centroids,
        ),
        segments=segments,
    )
    scoring: dict[str, float] = {}
    for name in SERVABLE:
        started = time.perf_counter()
        for start in range(0, len(customers), 131_072):
            chunk = customers.take(np.arange(start, min(start + 131_072, len(customers))))
            top_offers(rankers[name].scores(chunk), chunk.held, 3)
        scoring[name] = time.perf_counter() - started
    blend_bundle = replace(bundle, ranker=spec_of(rankers["blend"], {}))
    started = time.perf_counter()
    cross_sell(bundle, data, top_k=3)
    rules_batch = time.perf_counter() - started
    started = time.perf_counter()
    cross_sell(blend_bundle, data, top_k=3)
    blend_batch = time.perf_counter() - started

    stream: dict[str, float] = {}
    rng = np.random.default_rng(3)
    rows = rng.choice(len(customers), size=args.stream_customers, replace=False)
    for label, index in (
        ("rules", OfferIndex(bundle)),
        ("blend", OfferIndex(blend_bundle)),
        ("blend, the worker's index", OfferIndex(blend_bundle, per_event_ranker=False)),
    ):
        picks = [
            (
                int(customers.segments[r]),
                int(customers.held[r]),
                tuple(customers.features[r].tolist()),
            )
            for r in rows
        ]
        started = time.perf_counter()
        for segment, held, features in picks:
            index.offers(segment, held, features)
        stream[label] = (time.perf_counter() - started) / len(picks) * 1e6

    small = customers.take(
        rng.choice(len(customers), size=min(args.usercf_customers, len(customers)), replace=False)
    )
    usercf: dict[str, tuple[float, float]] = {}
    for label, pool in (("pool 20,000", 20_000), ("exact (every training customer)", len(small))):
        started = time.perf_counter()
        evaluation = hold_out(
            small,
            catalog,
            data.feature_names,
            4,
            params,
            RankerParams(names=("usercf",), usercf_pool=pool),
        )
        usercf[label] = (evaluation.metrics["usercf"]["MAP@7"], time.perf_counter() - started)

    table = Table(title=f"rankers, {len(customers):,} customers (one run; shared machine)")
    for column in ("what", "seconds or µs", "against the baseline"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row("train: segment + mine (today, baseline)", f"{baseline_train:.1f} s", "1.00")
    table.add_row(
        "train: every ranker", f"{rankers_train:.1f} s", f"{rankers_train / baseline_train:.2f}"
    )
    for name, value in seconds.items():
        table.add_row(f"  {name}", f"{value:.1f} s", "")
    for name, value in scoring.items():
        table.add_row(
            f"batch scores + top 3: {name}", f"{value:.2f} s", f"{value / scoring['rules']:.2f}"
        )
    table.add_row("cross-sell with rules (baseline)", f"{rules_batch:.2f} s", "1.00")
    table.add_row(
        "cross-sell with blend", f"{blend_batch:.2f} s", f"{blend_batch / rules_batch:.2f}"
    )
    table.add_row("stream offers per customer: rules", f"{stream['rules']:.1f} µs", "1.00")
    for label in ("blend", "blend, the worker's index"):
        table.add_row(
            f"stream offers per customer: {label}",
            f"{stream[label]:.1f} µs",
            f"{stream[label] / stream['rules']:.2f}",
        )
    for label, (value, took) in usercf.items():
        table.add_row(
            f"usercf hold-out MAP@7, {label}, {len(small):,} customers",
            f"{value:.4f} ({took:.1f} s)",
            "",
        )
    console.print(table)
    console.print(f"propensity models: {notes.get('propensity_kinds')}")


if __name__ == "__main__":
    main()
