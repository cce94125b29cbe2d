"""kill -9 workers mid-stream, again and again: holdings and alerts end as with no crash.

One worker is killed three times; or two run and the kills alternate between them, so
each crash is a rebalance in which the survivor takes over and recovers the table.

The no-crash reference is computed with the worker's own pure steps (apply_snapshot,
apply_transaction, after_event, PartitionClocks, after_day_close) over the same records
in partition order. Snapshot rows carry a months table, and a third of the customers a
baseline three times their balance, so churn and retention alerts cross the crashes too.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

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
from training.retail import TrainParams, TrainResult, train_retail
from xsell.embedded import EmbeddedStack
from xsell.processes import free_port
from xsell.replaying import unread

XSELL = str(Path(sys.executable).with_name("xsell"))
EVENTS = 6_000
KILLS_AFTER_S = (4.0, 5.0, 6.0)  # each worker's life before SIGKILL; the last one finishes


def _months(row: dict[str, Any], *, high: bool) -> dict[str, float]:
    """Three months before November at the row's financial assets (x3 when `high`)."""
    total = financial_assets(
        {p: sum(float(row[c]) for c in cols) for p, cols in PRODUCT_BALANCES.items()}
    )
    return {m: total * (3 if high else 1) for m in ("2026-08", "2026-09", "2026-10")}


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


def _wait_until_read(
    settings: Settings, stack: EmbeddedStack, topic: str, ends: dict[int, int], worker: Any
) -> None:
    deadline = time.monotonic() + 120
    while left := unread(settings, stack.endpoints, topic, ends):
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not read all of {topic}: (committed, end) {left}")
        assert worker.poll() is None, "the worker died"
        time.sleep(0.5)


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


def _with_ranker(result: TrainResult, ranker: RankerName | None) -> Bundle:
    """The trained bundle, serving `ranker` (scored per batch in the worker, per event in
    the reference), as the worker reads it back from Redis."""
    if ranker is None:
        return result.bundle
    data, bundle = result.data, result.bundle
    customers = Customers(data.features, data.masks, result.segmentation.labels)
    params = RankerParams(names=("rules", ranker))
    rankers, _ = fit_rankers(customers, bundle.catalog, data.feature_names, bundle.segments, params)
    served = replace(bundle, ranker=spec_of(rankers[ranker], {}))
    return bundle_from_dict(json.loads(bundle_to_json(served)))


@pytest.mark.parametrize(
    ("workers", "ranker"),
    [(1, None), (2, "blend")],
    ids=["one worker, rules", "two workers, blend ranker"],
)
def test_kill_9_mid_stream_leaves_the_holdings_and_alerts_of_a_run_without_crashes(
    workers: int,
    ranker: RankerName | None,
    stack: EmbeddedStack,
    stack_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"k{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", prefix)
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    customers = generate_retail(2_000, seed=11, dirty_share=0.0)
    write_retail(customers, tmp_path / "c.del", "del")
    bundle = _with_ranker(
        train_retail(tmp_path / "c.del", RETAIL_SCHEMA, TrainParams(segments=3)), ranker
    )
    store = BundleStore(open_redis(settings, stack.endpoints), prefix)
    version = store.publish(bundle)
    store.activate(version)
    active = ActiveView(version, bundle, OfferIndex(bundle))
    policy = ContactPolicy(settings.cooldown_days, settings.max_alerts_per_day)
    churn = ChurnPolicy(settings.churn_threshold, settings.churn_grace_days)

    # The no-crash reference: the snapshot rows now, the events once the workers are done.
    rows = [
        {**row, "as_of": "2026-11-01", "months": _months(row, high=i % 3 == 0)}
        for i, row in enumerate(customers.to_dict("records")[:60])
    ]
    expected: dict[str, CustomerState] = {}
    expected_alerts: dict[str, str] = {}
    clocks = PartitionClocks()
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    snapshot_ends: dict[int, int] = {}
    for row in rows:
        customer = row["客户编号"]
        meta = producer.send(
            names.holdings_snapshot,
            key=customer.encode(),
            value=json.dumps(row, ensure_ascii=False).encode(),
        ).get(30)
        snapshot_ends[meta.partition] = meta.offset + 1
        state = apply_snapshot(
            CustomerState(customer),
            row,
            bundle.schema,
            unknown=bundle.unknown_policy,
            source=f"{meta.topic}:{meta.partition}",
            offset=meta.offset,
        )
        assert state is not None
        expected[customer] = state
    clocks.learn(expected.values())  # as the worker does from its table

    # The snapshot goes in first, with a worker that then stops cleanly (a snapshot row
    # replaces balances); the events queue up while no worker runs.
    env = {**os.environ}
    worker = subprocess.Popen([XSELL, "worker"], env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_until_read(settings, stack, names.holdings_snapshot, snapshot_ends, worker)
    finally:
        worker.terminate()
        worker.wait(60)
    rng = random.Random(5)
    ids = list(expected)
    sent = []
    for i in range(EVENTS):
        customer = rng.choice(ids)
        event = {
            "event_id": f"e{i}",
            "customer_id": customer,
            "ts": f"2026-11-{2 + i * 20 // EVENTS:02d}T10:{i % 60:02d}:00+08:00",
            "product": rng.choice(PRODUCTS),
            "kind": rng.choice(["credit", "credit", "open", "debit", "close"]),
            "amount": float(rng.randint(1, 500)),
            "branch_id": f"b{ids.index(customer) % 3}",
        }
        value = json.dumps(event, ensure_ascii=False).encode()
        sent.append((event, producer.send(names.transactions, key=customer.encode(), value=value)))
    producer.flush()
    producer.close()
    located = sorted(((f.get().partition, f.get().offset), e) for e, f in sent)
    ends = {partition: offset + 1 for (partition, offset), _ in located}

    def start() -> subprocess.Popen[bytes]:
        own_port = {**env, "XSELL_WEB_PORT": str(free_port())}
        return subprocess.Popen([XSELL, "worker"], env=own_port, stdout=subprocess.DEVNULL)

    # With two workers the kills alternate between them: each crash is a rebalance in
    # which the survivor takes over the dead worker's partitions and recovers its table.
    progress_at_kills = []
    running = [start() for _ in range(workers)]
    try:
        for n, life in enumerate(KILLS_AFTER_S):
            time.sleep(life)
            committed = group_offsets(
                settings, stack.endpoints, names.engine_group, names.transactions
            )
            progress_at_kills.append(sum(committed.values()))
            victim = n % workers
            running[victim].send_signal(signal.SIGKILL)
            running[victim].wait()
            running[victim] = start()
        _wait_until_read(settings, stack, names.transactions, ends, running[0])
        time.sleep(3)  # the last changelog writes and alerts
    finally:
        for worker in running:
            worker.terminate()
        for worker in running:
            worker.wait(60)
    # The kills hit mid-stream: work was left at the first (offsets committed so far).
    assert progress_at_kills[0] < EVENTS, progress_at_kills

    # The reference applies them in partition order, as a worker reads them, ranking
    # offers with the day snapshots of acceptance counts the workers took (open events
    # settle offers, so the counts grow during the run).
    counts = AcceptanceStore(store.client, prefix)
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

    latest = latest_states(settings, stack.endpoints, names.holdings_changelog)
    differ = [
        c
        for c, state in expected.items()
        if latest.get(c) != json.loads(json.dumps(state_to_dict(state)))
    ]
    if differ:
        want = json.loads(json.dumps(state_to_dict(expected[differ[0]])))
        got = latest.get(differ[0], {})
        detail = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
        history = _story(settings, stack, names, differ[0], located)
        pytest.fail(
            f"{len(differ)} of {len(expected)} customers differ; {differ[0]} (got, want): "
            f"{detail}\n{history}"
        )

    stored_books = {p: latest.get(book_key(p)) for p in books}
    want_books = {p: json.loads(encode_book(b)) for p, b in books.items() if b.book}
    assert {p: b for p, b in stored_books.items() if b} == want_books  # counted once each
    assert any(t.accepted for b in books.values() for t in b.book.values())  # openings settled

    seen: dict[str, list[str]] = defaultdict(list)
    for topic in (names.cross_sell_alerts, names.churn_alerts):
        for message in _read_all(settings, stack, topic):
            seen[json.loads(message.value)["alert_id"]].append(message.value.decode())
    kinds = {json.loads(alert)["type"] for alert in expected_alerts.values()}
    # Otherwise the test would prove nothing about them.
    assert kinds == {"cross_sell", "churn", "retention"}, kinds
    if ranker is not None:  # the offers are the ranker's, with its evidence
        sent = [json.loads(alert) for alert in expected_alerts.values()]
        assert all(a["evidence"]["ranker"] == ranker for a in sent if a["type"] == "cross_sell")
    assert set(seen) == set(expected_alerts)  # every expected alert, nothing else
    for alert_id, copies in seen.items():  # repeats are the same alert, byte for byte
        assert set(copies) == {expected_alerts[alert_id]}
