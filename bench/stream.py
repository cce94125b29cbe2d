"""Stream speed on the embedded broker: the worker against a hand-written loop, same run.

Each scenario gets its own topics and bundle. N generated transactions (consistent with a
5,000-customer snapshot that a worker has loaded first) are queued, then:

- one worker, then two workers in one group, drain them: events/s from the time every
  worker has taken an event (the second one's rebalance done) to the last one taken (each
  worker's /metrics count, read every 0.1 s: the group's commits, every ~3 s, were too
  coarse a clock); two workers with a table standby each (the default) and without;
  `--drains N` repeats them, alternating, and shows the medians;
- the baseline: a hand-written aiokafka loop over the same records (decode, a dict
  update per customer, and a produced alert for 10% of events), events/s;
- the peer: Quix Streams (the optional `bench` extra) doing the same work (JSON decode,
  a per-customer state in its RocksDB store with changelogs, 10% of events to an alert
  topic), events/s from its first record to the last;
- the worker's batch path with an empty body: a Faust app whose transactions go through
  the batch intake (streams/compat/batch_intake.py) to a task that only acknowledges;
- latency: one worker while events are replayed at each of `--rates` per second,
  event→alert p50/p99 (an alert's broker timestamp minus its event's send time).

The pipeline is the whole one: validation, holdings, cross-sell and the churn test (the
snapshot carries months tables, 50 drainers are planted, days close as event time moves).
Prints a table with ratios to the hand-written loop.

Run: .venv/bin/python bench/stream.py [--events N] [--drains N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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

    def committed(self, topic: str | None = None) -> int:
        """Records of `topic` (the transactions by default) the group has committed."""
        offsets = group_offsets(
            self.settings,
            self.stack.endpoints,
            self.names.engine_group,
            topic or self.names.transactions,
        )
        return sum(offsets.values())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def taken(worker: Worker, source: str) -> int:
    """Records of an input (`transactions`, `outcomes`...) a worker has taken so far, from
    its /metrics (0 before it answers)."""
    url = f"http://127.0.0.1:{worker.web_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f'xsell_events_in_total{{input="{source}"}}'):
            return int(line.rsplit(" ", 1)[1])
    return 0


def drain(scenario: Scenario, running: list[Worker], source: str, topic: str, count: int) -> float:
    """Events/s of `running` workers draining `count` records of `topic`, queued beforehand,
    once all of them work: the records left when the last worker took its first (the
    group's rebalance for it done), over the time from then to the last record taken.
    Each worker's count is read every 0.1 s (the group's commits, every ~3 s, were too
    coarse a clock); a record taken twice after a rebalance costs its time, counts once."""
    first: tuple[float, int] | None = None
    seen, last, checked = 0, 0.0, 0.0
    while True:
        now = time.monotonic()
        counts = [taken(worker, source) for worker in running]
        if sum(counts) > seen:
            seen, last = sum(counts), now
            if first is None and all(counts):
                first = (now, seen)
        if now - checked > 1:  # done once the group has committed every record
            if scenario.committed(topic) >= count:
                break
            checked = now
            for worker in running:
                worker.check()
        time.sleep(0.1)
    if first is None or last <= first[0]:
        msg = "no progress measured with every worker taking records"
        raise RuntimeError(msg)
    return (count - first[1]) / (last - first[0])


def drain_rate(
    scenario: Scenario, lines: list[bytes], workers: int, cpu: list[float] | None = None
) -> float:
    """Events/s of `workers` workers draining `lines` queued beforehand (`drain`); `cpu`
    gets each worker's CPU seconds over its life (start-up included), taken before it stops."""
    sent = send_lines(scenario.producer, scenario.names.transactions, lines)
    running = [scenario.worker(f"w{i}") for i in range(workers)]
    try:
        return drain(scenario, running, "transactions", scenario.names.transactions, sent.count)
    finally:
        if cpu is not None:
            cpu.extend(cpu_seconds(worker.process.pid) for worker in running)
        for worker in running:
            worker.stop()


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


def _quix_peer(bootstrap: str, topic: str, count: int, state_dir: Path) -> float:
    """Run as the peer's process (`--peer quix`): drain `count` records, return events/s."""
    from quixstreams import Application
    from quixstreams.models.topics.manager import TopicManager

    # Tansu's topic configs carry no retention.ms, which Quix copies to its changelogs.
    derive = TopicManager.derive_topic_config.__func__  # type: ignore[attr-defined]

    def with_retention(cls: type, topics: list[object]) -> object:
        for each in topics:
            each.broker_config.extra_config.setdefault("retention.ms", "-1")  # type: ignore[attr-defined]
        return derive(cls, topics)

    TopicManager.derive_topic_config = classmethod(with_retention)  # type: ignore[method-assign,assignment]

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"{topic}-quix",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    alerts = app.topic(f"{topic}.quix_alerts", value_serializer="json")
    seen = {"n": 0, "t0": 0.0, "t1": 0.0}

    def add(event: dict[str, object], state: object) -> None:
        if not seen["n"]:
            seen["t0"] = time.perf_counter()
        seen["n"] += 1
        total = state.get("total", 0.0) + float(event["amount"])  # type: ignore[attr-defined, arg-type]
        state.set("total", total)  # type: ignore[attr-defined]
        if seen["n"] >= count:
            seen["t1"] = time.perf_counter()
            app.stop()

    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf = sdf.update(add, stateful=True)
    sdf = sdf.filter(lambda _event: seen["n"] % 10 == 0)
    sdf.to_topic(alerts)
    app.run()
    return count / (seen["t1"] - seen["t0"])


def _empty_batch_path(bootstrap: str, redis: str, topic: str, count: int, result: Path) -> None:
    """Run as a worker-like process (`--peer intake`): the worker's app settings and fixes,
    `topic` through the batch intake to a task that only acknowledges; events/s."""
    from rules_store.settings import Endpoints
    from streams.compat.batch_intake import BatchIntake
    from streams.compat.faust_fixes import install_faust_fixes
    from streams.compat.tansu import install_fetch_wait
    from streams.kafka.app import create_app, declare_topic

    settings = Settings()
    endpoints = Endpoints(bootstrap, redis, embedded_broker=True, embedded_redis=True)
    install_faust_fixes()
    install_fetch_wait(EMBEDDED_FETCH_WAIT_MS)
    app = create_app(settings, endpoints, app_id=f"{topic}-intake", web_enabled=False)
    intake = BatchIntake(app, topic, max_records=settings.batch_size)
    app.topics.add(declare_topic(app, topic, settings))
    rate = {"n": 0, "t0": 0.0}

    @app.task  # type: ignore[untyped-decorator]
    async def drain() -> None:
        async for chunks in intake.batches():
            rate["t0"] = rate["t0"] or time.perf_counter()
            rate["n"] += sum(len(c.records) for c in chunks)
            intake.done(chunks)
            if rate["n"] >= count:
                result.write_text(str(rate["n"] / (time.perf_counter() - rate["t0"])))
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


def run_peer(kind: str, stack: EmbeddedStack, lines: list[bytes], workdir: Path) -> float | None:
    """`lines` queued on a topic of their own, drained by the peer `kind` in a child process."""
    settings = stack.settings
    topic = f"peer-{kind}-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, stack.endpoints, (topic,))
    producer = KafkaProducer(linger_ms=5, **kafka_python_options(settings, stack.endpoints))
    sent = send_lines(producer, topic, lines)
    producer.close()
    command = [sys.executable, __file__, "--peer", kind, "--topic", topic]
    command += ["--events", str(sent.count), "--bootstrap", stack.endpoints.kafka_bootstrap]
    command += ["--redis", stack.endpoints.redis_url, "--state", str(workdir / f"{topic}-state")]
    result = workdir / f"{topic}.rate"
    command += ["--result", str(result)]
    env = {**os.environ, "XSELL_STATE_DIR": str(workdir / "state")}
    with (workdir / f"{topic}.log").open("w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=log, timeout=600, check=False)
    if result.exists():
        return float(result.read_text())
    console.print(f"[red]{kind}: no result; see {workdir / f'{topic}.log'}[/red]")
    return None


def _peer_main(args: argparse.Namespace) -> None:
    if args.peer == "quix":
        rate = _quix_peer(args.bootstrap, args.topic, args.events, Path(args.state))
        Path(args.result).write_text(str(rate))
    else:
        _empty_batch_path(args.bootstrap, args.redis, args.topic, args.events, Path(args.result))


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


def _rates(rates: list[float]) -> str:
    return " / ".join(f"{rate:,.0f}" for rate in rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument(
        "--rates", default="1000,2000,5000", help="replay rates for the latency figures"
    )
    parser.add_argument(
        "--drains",
        type=int,
        default=1,
        help="drains by one and by two workers, alternating; their medians are shown"
        " (the machine's speed drifts between minutes)",
    )
    parser.add_argument("--peer", choices=("quix", "intake"), help=argparse.SUPPRESS)
    for hidden in ("--topic", "--bootstrap", "--redis", "--state", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        _peer_main(args)
        return
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
        ones = [drain_rate(one, lines, workers=1)]
        # The baseline reads the events the first worker drained, as it always has.
        hand = asyncio.run(_hand_written(one.settings, stack, one.names.transactions, len(lines)))
        twos: list[float] = []
        bares: list[float] = []  # two workers, no table standby
        for n in range(args.drains):
            if n:
                ones.append(drain_rate(Scenario(stack, bundle, snapshot, workdir), lines, 1))
            twos.append(drain_rate(Scenario(stack, bundle, snapshot, workdir), lines, 2))
            os.environ["XSELL_STANDBY_REPLICAS"] = "0"  # for the workers started below
            try:
                bares.append(drain_rate(Scenario(stack, bundle, snapshot, workdir), lines, 2))
            finally:
                del os.environ["XSELL_STANDBY_REPLICAS"]
        one_rate, two_rate = statistics.median(ones), statistics.median(twos)
        bare_rate = statistics.median(bares)
        if args.drains > 1:
            console.print(
                f"one worker: {_rates(ones)}; two workers: {_rates(twos)};"
                f" two, no standby: {_rates(bares)} events/s"
            )
        quix = run_peer("quix", stack, lines, workdir)
        empty = run_peer("intake", stack, lines, workdir)
        rows += [
            ("hand-written aiokafka loop (baseline)", f"{hand:,.0f} events/s", "1.00x"),
            ("one worker, full pipeline", f"{one_rate:,.0f} events/s", f"{one_rate / hand:.3f}x"),
            ("two workers, one group", f"{two_rate:,.0f} events/s", f"{two_rate / hand:.3f}x"),
            ("two workers / one worker", "", f"{two_rate / one_rate:.2f}x"),
            (
                "two workers, no table standby (XSELL_STANDBY_REPLICAS=0)",
                f"{bare_rate:,.0f} events/s",
                f"{bare_rate / hand:.3f}x",
            ),
            ("two workers, no standby / one worker", "", f"{bare_rate / one_rate:.2f}x"),
        ]
        if quix:
            rows += [
                (
                    "peer: Quix Streams, decode + state + 10% alerts",
                    f"{quix:,.0f} events/s",
                    f"{quix / hand:.3f}x",
                ),
                ("one worker / peer", "", f"{one_rate / quix:.2f}x"),
            ]
        if empty:
            rows.append(
                ("batch path, empty body", f"{empty:,.0f} events/s", f"{empty / hand:.3f}x")
            )
            if quix:
                rows.append(("batch path, empty body / peer", "", f"{empty / quix:.2f}x"))
        for rate in (float(r) for r in args.rates.split(",")):
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
