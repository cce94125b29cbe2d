"""Rankers at a bank's scale: training, batch scoring and per-customer stream scoring,
each with a baseline measured in the same run (today's rules path), so a noisy shared
machine hits both sides.

1. training on N customers (default 1,000,000): segmentation + rule mining (today's
   `train retail`, the baseline) and then every ranker (`fit_rankers`), per ranker;
2. batch scoring of the N customers: each servable ranker's scores and top 3, and the
   whole `cross_sell` (offers and their evidence) with the propensity and blend bundles
   against the same with the rules bundle;
3. stream: the worker's per-batch logic (`Processor.transactions`, batches of 500 as the
   worker takes them) on one product opening per customer, each batch's offers scored
   together: blend and propensity against rules, in microseconds per changed customer
   (the fastest of 5 interleaved rounds each). Twice: batches of openings only, and
   batches where one event in 16 is an opening and the others credit a held product
   (about the share of openings and closings in `xsell generate events`' traffic), so a
   batch has some 30 changed customers, as under a worker's full load;
4. usercf's pool index against an exact search over every training customer of the
   segment, on a smaller hold-out (MAP@7 and time).

Run: .venv/bin/python bench/rankers.py              (1,000,000 customers; minutes)
     .venv/bin/python bench/rankers.py --customers 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

# bench/ is on sys.path when run as a script: the pure-steps bench's sender that keeps nothing.
from steps import Discard  # type: ignore[import-not-found]

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.alerts import ActiveView
from rules_store.domain.offers import OfferIndex
from rules_store.domain.ranking import SERVABLE, Customers, top_offers
from rules_store.domain.segments import SegmentModel
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Record
from streams.processing.processor import Policies, Processor
from training.batch import cross_sell
from training.encoding import prepare_retail
from training.generate import generate_retail
from training.rankers.fit import RankerParams, fit_rankers, spec_of
from training.rankers.protocols import hold_out
from training.retail import TrainParams, mine_segments
from training.segmentation import fit_segments
from training.stages import Stages
from xsell.worker_command import tune_collector

console = Console()


def _timed(label: str, seconds: dict[str, float]) -> Stages:
    return Stages(
        on_start=lambda name: console.log(f"{label}: {name} ..."),
        on_end=lambda name, s: seconds.__setitem__(f"{label}: {name}", s),
    )


NAMES = TopicNames("bench")
BATCH = 500  # the worker's default batch_size
MIXES = (1, 16)  # events per opening in the stream's batches


def _stream_records(
    rows: pd.DataFrame, bundle: Bundle, *, events_per_opening: int
) -> tuple[list[Record], list[Record], int]:
    """Each customer's snapshot row; then, per customer, one opening of a product it lacks
    followed by `events_per_opening - 1` credits of products other customers hold (which
    change no holdings); and how many openings."""
    catalog = bundle.catalog
    snapshots: list[Record] = []
    held: list[tuple[str, tuple[str, ...]]] = []  # per customer, the products it holds
    for n, raw in enumerate(rows.drop(columns=["persona"], errors="ignore").to_dict("records")):
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in raw.items()}
        customer = str(row[bundle.schema.id_column])
        value = json.dumps(row | {"as_of": "2026-10-31"}, ensure_ascii=False).encode()
        snapshots.append(Record(NAMES.holdings_snapshot, 0, n, customer.encode(), value))
        balances = {c: float(row[c]) for c in catalog.balance_columns}
        held.append((customer, catalog.products_of(catalog.holdings_from_balances(balances))))
    holders = [(customer, products[0]) for customer, products in held if products]
    events: list[dict[str, object]] = []
    openings = 0
    for n, (customer, products) in enumerate(held):
        lacking = [p for p in catalog.names if p not in products]
        if not lacking:
            continue
        openings += 1
        events.append(
            {"customer_id": customer, "product": lacking[n % len(lacking)], "kind": "open"}
        )
        for k in range(events_per_opening - 1):
            other, product = holders[(n * 7 + k) % len(holders)]
            events.append({"customer_id": other, "product": product, "kind": "credit"})
    records = [
        Record(
            NAMES.transactions,
            0,
            n,
            str(event["customer_id"]).encode(),
            json.dumps(
                event
                | {
                    "event_id": f"e-{n}",
                    "ts": f"2026-11-02T{10 + n // 3600 % 12:02d}:{n // 60 % 60:02d}:{n % 60:02d}+08:00",
                    "amount": 1000.0 if event["kind"] == "open" else 10.0,
                },
                ensure_ascii=False,
            ).encode(),
        )
        for n, event in enumerate(events)
    ]
    return snapshots, records, openings


def _stream_seconds(bundle: Bundle, snapshots: list[Record], events: list[Record]) -> float:
    """CPU seconds of `Processor.transactions` over the events, in the worker's batches (not
    wall time: a flush pauses between chunks for the batches it would run beside)."""
    active = ActiveView("bench", bundle, OfferIndex(bundle))
    table: dict[str, bytes] = {}
    processor = Processor(table, Discard(), names=NAMES, active=lambda: active, policies=Policies())
    for start in range(0, len(snapshots), BATCH):
        asyncio.run(processor.snapshot_rows(snapshots[start : start + BATCH]))
    asyncio.run(processor.flush())
    started = time.process_time()
    for start in range(0, len(events), BATCH):
        asyncio.run(processor.transactions(events[start : start + BATCH]))
    asyncio.run(processor.flush())
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--stream-customers", type=int, default=5_000)
    parser.add_argument("--stream-rounds", type=int, default=5)
    parser.add_argument("--usercf-customers", type=int, default=60_000)
    args = parser.parse_args()
    seconds: dict[str, float] = {}

    console.log(f"generating {args.customers:,} customers")
    frame = generate_retail(args.customers, seed=7, dirty_share=0.0)
    data = prepare_retail(frame, RETAIL_SCHEMA, source="bench")
    # The stream's customers: rows as core banking sends them (snapshot, then an opening).
    stream_rows = frame.sample(n=min(args.stream_customers, len(frame)), random_state=3)
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
    batch: dict[str, float] = {}  # cross_sell: offers and their evidence, as a DataFrame
    for name in ("rules", "propensity", "blend"):
        spec = None if name == "rules" else spec_of(rankers[name], {})
        started = time.perf_counter()
        cross_sell(replace(bundle, ranker=spec), data, top_k=3)
        batch[name] = time.perf_counter() - started

    bundles = {
        "rules": bundle,
        "propensity": replace(bundle, ranker=spec_of(rankers["propensity"], {})),
        "blend": replace(bundle, ranker=spec_of(rankers["blend"], {})),
    }
    # Rounds interleaved, the fastest of each kept: the difference of two near figures
    # (a few µs on some hundreds) must not be the machine's noise. Every other round runs
    # the bundles in reverse order: always measured after rules, blend added 285 µs per
    # changed customer in the mix, measured first 53-118 µs (why is not known). The collector
    # is tuned as `xsell worker` tunes it (else it scans the training's objects again and
    # again).
    tune_collector()
    stream: dict[tuple[int, str], float] = {}
    for mix in MIXES:
        snapshots, events, openings = _stream_records(stream_rows, bundle, events_per_opening=mix)
        for round_ in range(args.stream_rounds):
            order = list(bundles.items())
            for label, served in order if round_ % 2 == 0 else order[::-1]:
                took = _stream_seconds(served, snapshots, events) / openings * 1e6
                stream[mix, label] = min(stream.get((mix, label), float("inf")), took)
    # Of that, the ranker's own part per changed customer, in a batch of BATCH (openings
    # only) and of one batch's changed customers in the mix: scoring (scores and top 3),
    # then the picked offers' evidence (what `decide_cross_sells` asks the index).
    own_part: dict[tuple[str, int, str], float] = {}
    sizes = (BATCH, BATCH // MIXES[-1])
    for _ in range(args.stream_rounds):
        for label in ("propensity", "blend"):
            index = OfferIndex(bundles[label])
            for size in sizes:
                asked = [
                    (int(customers.segments[r]), int(customers.held[r]), customers.features[r])
                    for r in range(size)
                ]
                started = time.perf_counter()
                scored = index.offers_many(asked)
                scored_in = time.perf_counter() - started
                picked = [(row, offers[0]) for row, offers in enumerate(scored.offers) if offers]
                started = time.perf_counter()
                index.explain(scored, [row for row, _ in picked], [offer for _, offer in picked])
                explained_in = time.perf_counter() - started
                for part, took in (("scores + top 3", scored_in), ("evidence", explained_in)):
                    key = (label, size, part)
                    own_part[key] = min(own_part.get(key, float("inf")), took / size * 1e6)

    rng = np.random.default_rng(3)
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
    for stage, value in seconds.items():
        table.add_row(f"  {stage}", f"{value:.1f} s", "")
    for ranker_name, value in scoring.items():
        table.add_row(
            f"batch scores + top 3: {ranker_name}",
            f"{value:.2f} s",
            f"{value / scoring['rules']:.2f}",
        )
    table.add_row("cross-sell with rules (baseline)", f"{batch['rules']:.2f} s", "1.00")
    for ranker in ("propensity", "blend"):
        table.add_row(
            f"cross-sell with {ranker}",
            f"{batch[ranker]:.2f} s",
            f"{batch[ranker] / batch['rules']:.2f}",
        )
    for mix in MIXES:
        batch_of = "openings only" if mix == 1 else f"one opening in {mix} events"
        rules_us = stream[mix, "rules"]
        table.add_row(
            f"stream, {batch_of}, per changed customer: rules (baseline)",
            f"{rules_us:.1f} µs",
            "1.00",
        )
        for label in ("propensity", "blend"):
            table.add_row(
                f"  {label}", f"{stream[mix, label]:.1f} µs", f"{stream[mix, label] / rules_us:.2f}"
            )
            table.add_row(
                f"  added by {label} (the difference)",
                f"{stream[mix, label] - rules_us:.1f} µs",
                "",
            )
    for (label, size, part), value in own_part.items():
        table.add_row(
            f"{label}, batch of {size} changed customers: {part}, per customer",
            f"{value:.1f} µs",
            "",
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
