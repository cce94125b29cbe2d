"""kill -9 workers mid-stream, again and again: do holdings and alerts end as with no crash?

One run of the scenario behind tests/integration/test_kill9.py and bench/kill9.py. Sixty
customers load snapshot rows with a months table (a third of them a baseline three times
their balance, so churn and retention alerts cross the crashes too); then 6,000
transactions arrive, paced, while the workers run. One worker is killed with
SIGKILL three times, or two run and the kills alternate between them, so each crash is a
rebalance in which the survivor takes over and recovers the table. Each kill comes 4, 5
and 6 s after the group has taken every worker in (a worker needs about 6 s to start on
2 cores), so each kill hits a worker at work, while events still arrive.

The no-crash reference is computed with the worker's own pure steps (apply_snapshot,
apply_transaction, after_event, PartitionClocks, after_day_close) over the same records in
partition order, and compared with what the workers left: each customer's latest state in
the changelog, each partition's acceptance book, every alert byte for byte.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from rules_store.bundle.codec import bundle_from_dict, bundle_to_json
from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.acceptance import AdaptivePolicy, PartitionBook
from rules_store.domain.adaptive import adaptive_for
from rules_store.domain.alerts import ActiveView, Learning
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.event_alerts import after_event
from rules_store.domain.events import parse_transaction
from rules_store.domain.holdings import CustomerState, apply_snapshot, apply_transaction
from rules_store.domain.offers import OfferIndex
from rules_store.domain.outcomes import OutcomePolicy
from rules_store.domain.ranking import Customers, RankerName
from rules_store.domain.state_codec import encode_book, state_to_dict
from rules_store.settings import Settings
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.changelog import latest_states
from streams.kafka.clients import ensure_topics, group_offsets, kafka_python_options
from streams.kafka.topics import TopicNames
from streams.processing.processor import book_key
from tests.default_catalog import CATALOG, PRODUCT_BALANCES, PRODUCTS, financial_assets
from training.generate import generate_retail, write_retail
from training.rankers.fit import RankerParams, fit_rankers, spec_of
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack
from xsell.processes import free_port
from xsell.replaying import unread

XSELL = str(Path(sys.executable).with_name("xsell"))
CUSTOMERS = 60
EVENTS = 6_000
KILLS_AFTER_S = (4.0, 5.0, 6.0)  # after the group has taken every worker in; then SIGKILL
SEND_S = 60.0  # the events' pace, from the workers' start; the rest go at once after the kills
WAIT_S = 120.0  # for the workers to start, or to read a topic to its end


class ScenarioError(RuntimeError):
    """The run cannot be compared: a worker died, or did not read its input in time."""


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when, which worker, and how far the stream had come."""

    at_s: float  # since the workers started
    worker: int  # with two workers, the kills alternate
    committed: int  # offsets the group had committed on the transactions, summed
    sent: int  # events sent by then
    taken: int | None  # transactions the killed worker had taken (None: it did not say)

    @property
    def mid_stream(self) -> bool:
        """Events were still unread (by the committed offsets) when the kill came."""
        return self.committed < EVENTS


@dataclass(frozen=True)
class Kill9Result:
    """What the workers left against the no-crash reference: the differences (all empty
    when they agree), the kills, and what the reference shows the run went through."""

    customers: int  # compared
    differ: dict[str, dict[str, tuple[Any, Any]]]  # customer -> field -> (got, want)
    story: str  # the first differing customer's events, changelog states and dead letters
    books: dict[int, tuple[Any, Any]]  # partition -> (stored, want) where they differ
    missing_alerts: list[str]  # ids expected, never sent
    extra_alerts: list[str]  # ids sent, not expected
    changed_alerts: dict[str, tuple[set[str], str]]  # id -> (copies sent, expected)
    kills: list[Kill]
    kinds: set[str]  # the alert kinds the reference sent
    rankers: set[str | None]  # the rankers its cross-sell alerts name as evidence
    settled: bool  # an opening settled an offer (the reference's books count it accepted)
    seconds: float

    @property
    def differs(self) -> bool:
        return bool(
            self.differ
            or self.books
            or self.missing_alerts
            or self.extra_alerts
            or self.changed_alerts
        )

    def customers_failure(self) -> str:
        """How many customers differ, the first one's differing fields and its story."""
        first = next(iter(self.differ))
        return (
            f"{len(self.differ)} of {self.customers} customers differ; {first} (got, want): "
            f"{self.differ[first]}\n{self.story}"
        )

    def summary(self) -> str:
        """The differences counted, in one line."""
        return (
            f"{len(self.differ)} of {self.customers} customers, {len(self.books)} books, "
            f"{len(self.missing_alerts)} missing, {len(self.extra_alerts)} extra and "
            f"{len(self.changed_alerts)} changed alerts differ"
        )

    def report(self) -> str:
        """Every difference, for a trial's log directory."""
        lines = [self.summary(), f"kills: {self.kills}"]
        if self.differ:
            lines += [self.customers_failure(), "all differing customers (got, want):"]
            lines += [f"  {c}: {detail}" for c, detail in self.differ.items()]
        lines += [f"book of partition {p} (stored, want): {b}" for p, b in self.books.items()]
        lines += [f"alert expected, never sent: {a}" for a in self.missing_alerts]
        lines += [f"alert sent, not expected: {a}" for a in self.extra_alerts]
        lines += [f"alert {a} (copies sent, expected): {c}" for a, c in self.changed_alerts.items()]
        return "\n".join(lines)


def run_kill9(
    stack: EmbeddedStack,
    *,
    workers: int,
    ranker: RankerName | None,
    seed: int,
    log_dir: Path,
) -> Kill9Result:
    """Run the scenario once on `stack`, under a fresh topic and key prefix: `workers`
    workers (1 or 2), the bundle serving `ranker` (None: its rules), events drawn with
    `seed`, each worker's stdout and stderr in `log_dir`."""
    started = time.monotonic()
    prefix = f"k{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    env = os.environ | {
        "XSELL_STATE_DIR": str(stack.settings.state_dir),
        "XSELL_TOPIC_PREFIX": prefix,
        "XSELL_REDIS_KEY_PREFIX": prefix,
    }
    records, bundle = _trained(ranker)
    store = BundleStore(open_redis(settings, stack.endpoints), prefix)
    version = store.publish(bundle)
    store.activate(version)
    rows = [
        {**row, "as_of": "2026-11-01", "months": _months(row, high=i % 3 == 0)}
        for i, row in enumerate(records)
    ]
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    try:
        loaded = _load_snapshot(settings, stack, names, producer, rows, bundle, env, log_dir)
        events = _events(list(loaded), seed)
        kills, located = _run_and_kill(
            settings, stack, names, producer, events, env, log_dir, workers
        )
    finally:
        producer.close()

    active = ActiveView(version, bundle, OfferIndex(bundle))
    expected, expected_alerts, books = _reference(settings, names, store, active, loaded, located)
    latest = latest_states(settings, stack.endpoints, names.holdings_changelog)
    differ: dict[str, dict[str, tuple[Any, Any]]] = {}
    for customer, state in expected.items():
        want = json.loads(json.dumps(state_to_dict(state)))
        got = latest.get(customer, {})
        if got != want:
            differ[customer] = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
    story = _story(settings, stack, names, next(iter(differ)), located) if differ else ""

    stored_books = {p: latest.get(book_key(p)) for p in books}
    want_books = {p: json.loads(encode_book(b)) for p, b in books.items() if b.book}
    got_books = {p: b for p, b in stored_books.items() if b}
    book_diffs = {
        p: (got_books.get(p), want_books.get(p))
        for p in got_books.keys() | want_books.keys()
        if got_books.get(p) != want_books.get(p)
    }

    seen: dict[str, set[str]] = defaultdict(set)
    for topic in (names.cross_sell_alerts, names.churn_alerts):
        for message in _read_all(settings, stack, topic):
            seen[json.loads(message.value)["alert_id"]].add(message.value.decode())
    alerts = [json.loads(alert) for alert in expected_alerts.values()]
    return Kill9Result(
        customers=len(expected),
        differ=differ,
        story=story,
        books=book_diffs,
        missing_alerts=sorted(expected_alerts.keys() - seen.keys()),
        extra_alerts=sorted(seen.keys() - expected_alerts.keys()),
        changed_alerts={
            a: (copies, expected_alerts[a])
            for a, copies in seen.items()
            if a in expected_alerts and copies != {expected_alerts[a]}
        },
        kills=kills,
        kinds={a["type"] for a in alerts},
        rankers={a.get("evidence", {}).get("ranker") for a in alerts if a["type"] == "cross_sell"},
        settled=any(t.accepted for b in books.values() for t in b.book.values()),
        seconds=time.monotonic() - started,
    )


@functools.cache
def _trained(ranker: RankerName | None) -> tuple[tuple[dict[str, Any], ...], Bundle]:
    """The first CUSTOMERS records, and the bundle trained on 2,000 customers serving
    `ranker` (scored per batch in the worker, per event in the reference) as the worker
    reads it back from Redis. The same for every trial: trained once per process."""
    customers = generate_retail(2_000, seed=11, dirty_share=0.0)
    records = tuple(customers.to_dict("records")[:CUSTOMERS])
    with tempfile.TemporaryDirectory() as folder:
        write_retail(customers, Path(folder) / "c.del", "del")
        result = train_retail(Path(folder) / "c.del", RETAIL_SCHEMA, TrainParams(segments=3))
    if ranker is None:
        return records, result.bundle
    data, bundle = result.data, result.bundle
    rows = Customers(data.features, data.masks, result.segmentation.labels)
    params = RankerParams(names=("rules", ranker))
    rankers, _ = fit_rankers(rows, bundle.catalog, data.feature_names, bundle.segments, params)
    served = replace(bundle, ranker=spec_of(rankers[ranker], {}))
    return records, bundle_from_dict(json.loads(bundle_to_json(served)))


def _months(row: dict[str, Any], *, high: bool) -> dict[str, float]:
    """Three months before November at the row's financial assets (x3 when `high`)."""
    total = financial_assets(
        {p: sum(float(row[c]) for c in cols) for p, cols in PRODUCT_BALANCES.items()}
    )
    return {m: total * (3 if high else 1) for m in ("2026-08", "2026-09", "2026-10")}


def _note(log_dir: Path, what: str) -> None:
    """A line in log_dir/timeline.log, to set the workers' logs against the kills."""
    with (log_dir / "timeline.log").open("a") as timeline:
        timeline.write(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {what}\n")


class _Worker:
    """`xsell worker` on its own web port, its stdout and stderr in log_dir/<name>.log."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.name = name
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        _note(log_dir, f"start {name}")
        with (log_dir / f"{name}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [XSELL, "worker"],
                env=env | {"XSELL_WEB_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as reply:  # noqa: S310 - loopback
                return bytes(reply.read())
        except OSError:  # not listening yet, or 503
            return None

    def partitions(self) -> list[int]:
        """The table partitions it serves; none while it starts, rebalances or recovers."""
        health = json.loads(self._get("/health") or b"{}")
        if any("rebalancing" in problem for problem in health.get("problems", [])):
            return []
        return list(health.get("partitions", []))

    def taken(self) -> int | None:
        """The transactions it has taken, from its /metrics."""
        prefix = b'xsell_events_in_total{input="transactions"} '
        for line in (self._get("/metrics") or b"").splitlines():
            if line.startswith(prefix):
                return int(line.removeprefix(prefix))
        return None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()

    def died(self) -> bool:
        return self.process.poll() is not None


def _wait_for(workers: list[_Worker], doing: str, left: Callable[[], object]) -> None:
    """Until `left()` says nothing is left; a ScenarioError if a worker dies first or
    WAIT_S passes."""
    deadline = time.monotonic() + WAIT_S
    while still := left():
        if dead := [worker.name for worker in workers if worker.died()]:
            msg = f"{dead} died while {doing}; see their logs"
            raise ScenarioError(msg)
        if time.monotonic() > deadline:
            msg = f"the workers were still {doing} after {WAIT_S:.0f} s: {still}"
            raise ScenarioError(msg)
        time.sleep(0.5)


def _wait_until_read(
    settings: Settings,
    stack: EmbeddedStack,
    topic: str,
    ends: dict[int, int],
    workers: list[_Worker],
) -> None:
    """Until the group has committed `topic` up to `ends`."""
    doing = f"reading {topic}: (committed, end)"
    _wait_for(workers, doing, lambda: unread(settings, stack.endpoints, topic, ends))


def _wait_until_settled(workers: list[_Worker], partitions: int) -> None:
    """Until the group has taken every worker in: each serves partitions, all of them
    together, none rebalancing or recovering."""

    def unsettled() -> list[list[int]] | None:
        held = [worker.partitions() for worker in workers]
        whole = all(held) and sorted(p for h in held for p in h) == list(range(partitions))
        return None if whole else held

    _wait_for(workers, "joining the group: their partitions", unsettled)


def _load_snapshot(
    settings: Settings,
    stack: EmbeddedStack,
    names: TopicNames,
    producer: KafkaProducer,
    rows: list[dict[str, Any]],
    bundle: Bundle,
    env: dict[str, str],
    log_dir: Path,
) -> dict[str, CustomerState]:
    """Send the snapshot rows and have a worker load them, then stop cleanly (a snapshot
    row replaces balances); each customer's state after its row, in the reference."""
    loaded: dict[str, CustomerState] = {}
    ends: dict[int, int] = {}
    for row in rows:
        customer = row["客户编号"]
        meta = producer.send(
            names.holdings_snapshot,
            key=customer.encode(),
            value=json.dumps(row, ensure_ascii=False).encode(),
        ).get(30)
        ends[meta.partition] = meta.offset + 1
        state = apply_snapshot(
            CustomerState(customer),
            row,
            bundle.schema,
            unknown=bundle.unknown_policy,
            source=f"{meta.topic}:{meta.partition}",
            offset=meta.offset,
        )
        assert state is not None
        loaded[customer] = state
    worker = _Worker(env, log_dir, "snapshot-loader")
    try:
        _wait_until_read(settings, stack, names.holdings_snapshot, ends, [worker])
    finally:
        worker.stop()
        worker.process.wait(60)
    return loaded


def _events(ids: list[str], seed: int) -> list[dict[str, Any]]:
    """EVENTS transactions over twenty November days for the customers `ids`."""
    rng = random.Random(seed)
    events = []
    for i in range(EVENTS):
        customer = rng.choice(ids)
        events.append(
            {
                "event_id": f"e{i}",
                "customer_id": customer,
                "ts": f"2026-11-{2 + i * 20 // EVENTS:02d}T10:{i % 60:02d}:00+08:00",
                "product": rng.choice(PRODUCTS),
                "kind": rng.choice(["credit", "credit", "open", "debit", "close"]),
                "amount": float(rng.randint(1, 500)),
                "branch_id": f"b{ids.index(customer) % 3}",
            }
        )
    return events


def _send_paced(
    producer: KafkaProducer,
    topic: str,
    events: list[dict[str, Any]],
    sent: list[tuple[dict[str, Any], FutureRecordMetadata]],
    hurry: threading.Event,
) -> None:
    """Send the events evenly over SEND_S seconds, each with its future into `sent`; all
    the rest at once when `hurry` is set."""
    started = time.monotonic()
    for i, event in enumerate(events):
        if i % 50 == 0:
            hurry.wait(max(0.0, started + SEND_S * i / len(events) - time.monotonic()))
        value = json.dumps(event, ensure_ascii=False).encode()
        key = event["customer_id"].encode()
        sent.append((event, producer.send(topic, key=key, value=value)))
    producer.flush()


def _run_and_kill(
    settings: Settings,
    stack: EmbeddedStack,
    names: TopicNames,
    producer: KafkaProducer,
    events: list[dict[str, Any]],
    env: dict[str, str],
    log_dir: Path,
    workers: int,
) -> tuple[list[Kill], list[tuple[tuple[int, int], dict[str, Any]]]]:
    """Start the workers and send the events meanwhile; each of KILLS_AFTER_S after the
    group has taken every worker in, kill one and start another in its place; once the
    events are all read, stop. The kills, and each event at its (partition, offset), in
    partition order."""
    sent: list[tuple[dict[str, Any], FutureRecordMetadata]] = []
    hurry = threading.Event()
    kills = []
    lives = [1] * workers
    running = [_Worker(env, log_dir, f"worker{n}-life1") for n in range(workers)]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(_send_paced, producer, names.transactions, events, sent, hurry)
            try:
                # With two workers the kills alternate between them: each crash is a
                # rebalance in which the survivor takes over the dead worker's partitions
                # and recovers its table.
                for n, life in enumerate(KILLS_AFTER_S):
                    _wait_until_settled(running, settings.topic_partitions)
                    time.sleep(life)
                    committed = group_offsets(
                        settings, stack.endpoints, names.engine_group, names.transactions
                    )
                    victim = n % workers
                    at_s = round(time.monotonic() - started, 1)
                    taken = running[victim].taken()
                    kills.append(Kill(at_s, victim, sum(committed.values()), len(sent), taken))
                    running[victim].kill()
                    _note(log_dir, f"killed {running[victim].name}: {kills[-1]}")
                    lives[victim] += 1
                    running[victim] = _Worker(env, log_dir, f"worker{victim}-life{lives[victim]}")
            finally:
                hurry.set()
            sending.result()
        located = sorted(((f.get().partition, f.get().offset), e) for e, f in sent)
        ends = {partition: offset + 1 for (partition, offset), _ in located}
        _wait_until_read(settings, stack, names.transactions, ends, running)
        time.sleep(3)  # the last changelog writes and alerts
    finally:
        for worker in running:
            worker.stop()
        for worker in running:
            worker.process.wait(60)
    return kills, located


def _reference(
    settings: Settings,
    names: TopicNames,
    store: BundleStore,
    active: ActiveView,
    loaded: dict[str, CustomerState],
    located: list[tuple[tuple[int, int], dict[str, Any]]],
) -> tuple[dict[str, CustomerState], dict[str, str], dict[int, PartitionBook]]:
    """The no-crash run: each customer's state, the alerts by id and each partition's book.

    The events apply in partition order, as a worker reads them, ranking offers with the
    day snapshots of acceptance counts the workers took (open events settle offers, so
    the counts grow during the run)."""
    bundle = active.bundle
    policy = ContactPolicy(settings.cooldown_days, settings.max_alerts_per_day)
    churn = ChurnPolicy(settings.churn_threshold, settings.churn_grace_days)
    expected = dict(loaded)
    expected_alerts: dict[str, str] = {}
    clocks = PartitionClocks()
    clocks.learn(expected.values())  # as the worker does from its table
    counts = AcceptanceStore(store.client, settings.redis_key_prefix)
    figures = bundle.ranker.figures if bundle.ranker else {}
    adaptive = adaptive_for(AdaptivePolicy(), figures)  # as the worker takes its prior
    books: dict[int, PartitionBook] = defaultdict(PartitionBook)
    for (partition, offset), event in located:
        tx = parse_transaction(event, CATALOG)
        source = f"{names.transactions}:{partition}"
        by = f"{source}@{offset}"
        learning = Learning(OutcomePolicy(), adaptive, counts.day_snapshot, by)
        before = expected[tx.customer_id]
        stored, alerts = after_event(
            before,
            apply_transaction(
                before, tx, catalog=CATALOG, source=source, offset=offset, churn=churn
            ),
            event_id=tx.event_id,
            ts=tx.ts,
            active=active,
            policy=policy,
            churn=churn,
            learning=learning,
            opened=tx.product if tx.kind == "open" else None,
        )
        assert stored is not None
        expected[tx.customer_id] = stored
        sent, settled = stored.offers.caused_by(by)
        if sent or settled:  # as the worker counts: an event that caused nothing moves nothing
            books[partition] = (
                books[partition].count(source, offset, sent, settled) or books[partition]
            )
        clocks.track(partition, stored)
        for closed, more in clocks.close_days(
            partition, tx.ts, expected.__getitem__, active=active, churn=churn
        ):
            expected[closed.customer_id] = closed
            alerts += more
        for _, alert in alerts:
            expected_alerts[json.loads(alert)["alert_id"]] = alert
    return expected, expected_alerts, books


def _read_all(settings: Settings, stack: EmbeddedStack, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
        **kafka_python_options(settings, stack.endpoints),
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def _story(
    settings: Settings,
    stack: EmbeddedStack,
    names: TopicNames,
    customer: str,
    located: list[tuple[tuple[int, int], dict[str, Any]]],
) -> str:
    """What happened to one customer, to diagnose a difference: its events, every state
    written to the changelog for it, and its dead letters."""
    lines = ["events (partition, offset, ts, kind, product, amount):"]
    lines += [
        f"  {p} {o} {e['ts']} {e['kind']} {e['product']} {e['amount']}"
        for (p, o), e in located
        if e["customer_id"] == customer
    ]
    lines.append("changelog (offset: positions, latest, balances):")
    for message in _read_all(settings, stack, names.holdings_changelog):
        state = json.loads(message.value) if message.value else {}
        if state.get("customer_id") == customer:
            balances = {k: v for k, v in state.get("balances", {}).items() if v}
            assets = state.get("assets", {})
            lines.append(
                f"  {message.offset}: {state.get('positions')} {assets.get('latest')} {balances}"
            )
    lines.append("dead letters:")
    lines += [
        f"  {m.value[:300]!r}"
        for m in _read_all(settings, stack, names.dead_letters)
        if m.key == customer.encode()
    ]
    return "\n".join(lines)
