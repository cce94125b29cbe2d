"""Stream speed on the embedded broker: the worker against a hand-written loop, same run.

Each scenario gets its own topics and bundle. N generated transactions (consistent with a
5,000-customer snapshot that a worker has loaded first) are queued, then:

- one worker, then two workers in one group, drain them: events/s from the first
  committed offset to the last (the group's commits, every ~3 s, bound the precision);
- the baseline: a hand-written aiokafka loop over the same records (decode, a dict
  update per customer, and a produced alert for 10% of events), events/s;
- latency: one worker while events are replayed at 1,000 and 2,000 per second,
  event→alert p50/p99 (an alert's broker timestamp minus its event's send time).

The pipeline is the whole one: validation, holdings, cross-sell and the churn test (the
snapshot carries months tables, 50 drainers are planted, days close as event time moves).
Prints a table with ratios to the hand-written loop.

Run: .venv/bin/python bench/stream.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer
from rich.console import Console
from rich.table import Table

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.settings import Settings
from rules_store.store.redis_store import BundleStore, open_redis
from streams.compat.tansu import EMBEDDED_FETCH_WAIT_MS
from streams.kafka.clients import ensure_topics, group_offsets, kafka_python_options
from streams.kafka.topics import TopicNames
from training.event_generator import EventPlan, generate_events
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.demo_command import CatchUp, Worker
from xsell.demo_tally import Tally
from xsell.embedded import EmbeddedStack
from xsell.replaying import History, Sent, send_lines, snapshot_lines

console = Console()
CUSTOMERS = 5_000


class Scenario:
    """Own topics, bundle and a loaded snapshot; events queued with no worker running."""

    def __init__(self, stack: EmbeddedStack, bundle: object, snapshot: list[bytes], workdir: Path):
        self.prefix = f"b{uuid.uuid4().hex[:8]}"
        self.stack = stack
        self.settings = stack.settings.model_copy(
            update={"topic_prefix": self.prefix, "redis_key_prefix": self.prefix}
        )
        self.names = TopicNames(self.prefix)
        self.workdir = workdir
        os.environ["XSELL_TOPIC_PREFIX"] = self.prefix  # for the workers started below
        os.environ["XSELL_REDIS_KEY_PREFIX"] = self.prefix
        ensure_topics(self.settings, stack.endpoints, self.names.all())
        store = BundleStore(open_redis(self.settings, stack.endpoints), self.prefix)
        store.activate(store.publish(bundle))  # type: ignore[arg-type]
        self.producer = KafkaProducer(
            linger_ms=5, **kafka_python_options(self.settings, stack.endpoints)
        )
        loader = self.worker("loader")
        loaded = send_lines(
            self.producer, self.names.holdings_snapshot, snapshot, key_field=RETAIL_SCHEMA.id_column
        )
        catch_up = CatchUp(self.settings, stack, loader, self.names.holdings_snapshot)
        while not catch_up.done(loaded):
            time.sleep(0.5)
        loader.stop()

    def worker(self, name: str) -> Worker:
        return Worker(self.settings, self.workdir / f"{self.prefix}-{name}.log")

    def committed(self) -> int:
        offsets = group_offsets(
            self.settings, self.stack.endpoints, self.names.engine_group, self.names.transactions
        )
        return sum(offsets.values())


def drain_rate(scenario: Scenario, lines: list[bytes], workers: int) -> float:
    """Events/s of `workers` workers draining `lines` queued beforehand."""
    sent = send_lines(scenario.producer, scenario.names.transactions, lines)
    running = [scenario.worker(f"w{i}") for i in range(workers)]
    try:
        first: tuple[float, int] | None = None
        while True:
            done = scenario.committed()
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= sent.count:
                break
            for worker in running:
                worker.check()
            time.sleep(0.2)
    finally:
        for worker in running:
            worker.stop()
    if first is None:
        msg = "no progress measured"
        raise RuntimeError(msg)
    return (done - first[1]) / max(now - first[0], 1e-9)


async def _hand_written(settings: Settings, stack: EmbeddedStack, topic: str, count: int) -> float:
    bootstrap = stack.endpoints.kafka_bootstrap
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=EMBEDDED_FETCH_WAIT_MS,
        max_partition_fetch_bytes=4 << 20,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    state: dict[str, float] = {}
    seen = 0
    started = None
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000)
            if started is None and batches:
                started = time.monotonic()
            for records in batches.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                        state[event["customer_id"]] = state.get(event["customer_id"], 0.0) + float(
                            event["amount"]
                        )
                    except (ValueError, KeyError, TypeError):
                        pass
                    seen += 1
                    if seen % 10 == 0:
                        await producer.send(f"{topic}.bench_alerts", record.value, key=record.key)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    if started is None:
        msg = "nothing consumed"
        raise RuntimeError(msg)
    return seen / (time.monotonic() - started)


def latency(
    scenario: Scenario, lines: list[bytes], rate: float
) -> tuple[float | None, float | None]:
    """p50/p99 event→alert ms for one worker while `lines` are replayed at `rate`/s."""
    worker = scenario.worker(f"lat{int(rate)}")
    consumer = KafkaConsumer(
        scenario.names.cross_sell_alerts,
        auto_offset_reset="latest",
        **kafka_python_options(scenario.settings, scenario.stack.endpoints),
    )
    sent = Sent()
    tally = Tally(sent.at)

    def take_alerts() -> None:
        for batch in consumer.poll(timeout_ms=200).values():
            for message in batch:
                tally.add("cross_sell", json.loads(message.value), message.timestamp)

    try:
        # Warm up: the clock starts once the worker has read (and committed) a few events.
        warm = send_lines(scenario.producer, scenario.names.transactions, lines[:10])
        while scenario.committed() < warm.count or not consumer.assignment():
            consumer.poll(200)
            worker.check()
        tally.latencies_ms.clear()
        sender = threading.Thread(
            target=send_lines,
            args=(scenario.producer, scenario.names.transactions, lines[10:]),
            kwargs={"rate": rate, "sent": sent},
        )
        sender.start()
        while sender.is_alive() or scenario.committed() < warm.count + sent.count:
            take_alerts()
            worker.check()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            take_alerts()
    finally:
        consumer.close()
        worker.stop()
    return tally.latency_ms(50), tally.latency_ms(99)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xsell-bench-stream-"))
    os.environ["XSELL_STATE_DIR"] = str(workdir / "state")
    settings = Settings(state_dir=workdir / "state")
    frame = generate_retail(CUSTOMERS, seed=3, dirty_share=0.0)
    write_retail(frame, workdir / "customers.del", "del")
    bundle = train_retail(workdir / "customers.del", RETAIL_SCHEMA, TrainParams(seed=3)).bundle
    days = 30
    plan = EventPlan(
        days=days, events_per_customer_day=args.events / (CUSTOMERS * days), drainers=50
    )
    generated = generate_events(frame, RETAIL_SCHEMA, plan)
    lines = generated.lines
    # With months tables, so the churn test runs too (every customer's days close daily).
    history = History(plan.as_of, generated.months)
    snapshot, _ = snapshot_lines(frame, RETAIL_SCHEMA.id_column, history)
    console.print(f"{len(lines):,} events for {CUSTOMERS:,} customers; work dir {workdir}")
    rows: list[tuple[str, str, str]] = []
    with EmbeddedStack(settings) as stack:
        one = Scenario(stack, bundle, snapshot, workdir)
        one_rate = drain_rate(one, lines, workers=1)
        hand = asyncio.run(_hand_written(one.settings, stack, one.names.transactions, len(lines)))
        two = Scenario(stack, bundle, snapshot, workdir)
        two_rate = drain_rate(two, lines, workers=2)
        rows += [
            ("hand-written aiokafka loop (baseline)", f"{hand:,.0f} events/s", "1.00x"),
            ("one worker, full pipeline", f"{one_rate:,.0f} events/s", f"{one_rate / hand:.3f}x"),
            ("two workers, one group", f"{two_rate:,.0f} events/s", f"{two_rate / hand:.3f}x"),
            ("two workers / one worker", "", f"{two_rate / one_rate:.2f}x"),
        ]
        for rate in (1_000.0, 2_000.0):
            live = Scenario(stack, bundle, snapshot, workdir)
            p50, p99 = latency(live, lines[: int(rate * 10)], rate)
            rows.append(
                (
                    f"event→alert latency at {rate:,.0f}/s, one worker",
                    f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms" if p50 and p99 else "no alerts",
                    "",
                )
            )
    table = Table(title=f"stream speed, {len(lines):,} events (embedded broker)")
    for column in ("figure", "value", "ratio"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
