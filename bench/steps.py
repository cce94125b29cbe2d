"""The worker's pure steps in-process, with Python's default collector settings and with
the worker's (`tune_collector`), same run.

What a worker does per transaction between the intake and the producer: decode and
validate, apply to the customer's state (holdings, the churn history), choose alerts,
close days, and at each commit encode the changed states (`Processor`, a dict as the
table, a sender that keeps nothing). The data are bench/stream.py's: 5,000 customers
whose snapshot carries months tables, 40,000 events over 30 days, 50 drainers. Rounds
alternate the two settings; each starts from the loaded snapshot, states decoded.
Prints CPU µs/event (process time) and the ratio to the default settings. `--digest`
first prints a digest of every message and state the steps write (untimed): two checkouts
that print the same digest send and store the same bytes, so a change meant only to be
faster can be checked, and timed against the other checkout in alternating runs.

Run: .venv/bin/python bench/steps.py [--rounds N] [--digest]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import statistics
import tempfile
import time
import zlib
from collections.abc import Awaitable, Sequence
from datetime import date
from pathlib import Path

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.alerts import ActiveView
from rules_store.domain.offers import OfferIndex
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Message, Record, Stored
from streams.processing.processor import Policies, Processor
from training.event_generator import EventPlan, generate_events
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.replaying import History, snapshot_lines
from xsell.worker_command import tune_collector

NAMES = TopicNames("steps")
PARTITIONS = 8
BATCH = 500
COMMIT_EVERY = 10  # batches


class Discard:
    """A sender that keeps nothing: only the steps are timed."""

    async def send(self, messages: Sequence[Message]) -> None:
        pass

    def acknowledgements(self) -> Awaitable[object]:
        return asyncio.sleep(0)

    async def write_changelog(self, states: Sequence[Stored]) -> None:
        pass

    async def changelog_written(self) -> None:
        pass


class Digest(Discard):
    """A sender that hashes what it is handed, in order."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.messages = self.states = 0

    async def send(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.hash.update(repr(tuple(message)).encode())
        self.messages += len(messages)

    async def write_changelog(self, states: Sequence[Stored]) -> None:
        for state in states:
            self.hash.update(repr(tuple(state)).encode())
        self.states += len(states)


def _records(topic: str, lines: list[bytes], key_of: str) -> list[Record]:
    out = []
    for offset, line in enumerate(lines):
        key = str(json.loads(line)[key_of]).encode()
        out.append(Record(topic, zlib.crc32(key) % PARTITIONS, offset, key, line, 0.0))
    return out


def _processor(
    table: dict[str, bytes], active: ActiveView, sender: Discard | None = None
) -> Processor:
    return Processor(
        table,
        sender or Discard(),
        names=NAMES,
        active=lambda: active,
        policies=Policies(),
        today=lambda: date(2026, 12, 31),
    )


async def _run(processor: Processor, records: list[Record]) -> None:
    for n, start in enumerate(range(0, len(records), BATCH), start=1):
        await processor.transactions(records[start : start + BATCH])
        if n % COMMIT_EVERY == 0:
            await processor.flush()
    await processor.flush()


def _round(loaded: dict[str, bytes], active: ActiveView, records: list[Record]) -> float:
    processor = _processor(dict(loaded), active)
    for customer in loaded:  # decoded, as in a worker between batches
        processor.states.get(customer)
    started = time.process_time()
    asyncio.run(_run(processor, records))
    return (time.process_time() - started) / len(records) * 1e6


def _default_collector() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--digest", action="store_true", help="print what the steps write")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xsell-bench-steps-"))
    frame = generate_retail(5_000, seed=3, dirty_share=0.0)
    write_retail(frame, workdir / "customers.del", "del")
    bundle = train_retail(workdir / "customers.del", RETAIL_SCHEMA, TrainParams(seed=3)).bundle
    active = ActiveView("v1", bundle, OfferIndex(bundle))
    plan = EventPlan(days=30, events_per_customer_day=40_000 / (5_000 * 30), drainers=50)
    generated = generate_events(frame, RETAIL_SCHEMA, plan)
    snapshot, _ = snapshot_lines(
        frame, RETAIL_SCHEMA.id_column, History(plan.as_of, generated.months)
    )
    loaded: dict[str, bytes] = {}
    loader = _processor(loaded, active)
    rows = _records(NAMES.holdings_snapshot, snapshot, RETAIL_SCHEMA.id_column)
    asyncio.run(loader.snapshot_rows(rows))
    asyncio.run(loader.flush())
    records = _records(NAMES.transactions, generated.lines, "customer_id")
    if args.digest:
        digest = Digest()
        asyncio.run(_run(_processor(dict(loaded), active, digest), records))
        print(
            f"digest {digest.hash.hexdigest()[:16]} over {digest.messages:,} messages"
            f" and {digest.states:,} states"
        )
    if args.rounds < 1:
        return
    timings: dict[str, list[float]] = {"default": [], "worker": []}
    for _ in range(args.rounds):
        for name, settle in (("default", _default_collector), ("worker", tune_collector)):
            settle()
            timings[name].append(_round(loaded, active, records))
    default = statistics.median(timings["default"])
    worker = statistics.median(timings["worker"])
    print(f"{len(records):,} transactions, {len(loaded):,} customers, {args.rounds} rounds")
    print(f"pure steps, default collector settings: {default:6.1f} µs/event  1.00x")
    print(
        f"pure steps, the worker's settings:      {worker:6.1f} µs/event  {worker / default:.2f}x"
    )


if __name__ == "__main__":
    main()
