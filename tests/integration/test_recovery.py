"""A restarted worker recovers its whole table, including the changelog's last batch, into
RocksDB (the default store), where it holds what the changelog holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from kafka import KafkaProducer

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import encode_state
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.changelog import latest_states
from streams.kafka.clients import ensure_topics, group_offsets, kafka_python_options
from streams.kafka.topics import TopicNames
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack

XSELL = str(Path(sys.executable).with_name("xsell"))


def test_a_restarted_worker_recovers_the_changelogs_last_batch_too(
    stack: EmbeddedStack, stack_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Tansu reports the end of a partition as the start of its last batch. Leave a whole
    table's state in the changelog as one batch per partition (as a worker that was killed
    would have), start a worker, and check that it recovered all of it."""
    prefix = f"f{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", prefix)
    settings = stack.settings.model_copy(update={"topic_prefix": prefix})
    endpoints = stack.endpoints
    names = TopicNames(prefix)
    changelog = TopicNames(prefix).holdings_changelog
    ensure_topics(settings, endpoints, (*names.all(), changelog))
    # A transaction's product is checked against the active bundle's catalog.
    write_retail(generate_retail(300, seed=2, dirty_share=0.0), tmp_path / "c.del", "del")
    bundle = train_retail(tmp_path / "c.del", RETAIL_SCHEMA, TrainParams(segments=2)).bundle
    store = BundleStore(open_redis(settings, endpoints), prefix)
    store.activate(store.publish(bundle))
    customers = [f"k{i:03d}" for i in range(100)]
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    last: dict[str, tuple[str, int]] = {}
    for i, customer in enumerate(customers):
        event = {
            "event_id": f"d{i}",
            "customer_id": customer,
            "ts": "2026-11-23T10:00:00+08:00",
            "product": "存款",
            "kind": "credit",
            "amount": 1.0,
        }
        meta = producer.send(
            names.transactions, key=customer.encode(), value=json.dumps(event).encode()
        ).get(30)
        last[customer] = (f"{meta.topic}:{meta.partition}", meta.offset)
    producer.close()
    # One record per customer in the changelog partition of its events (keys JSON-encoded,
    # as Faust writes them), sent as one large batch per partition.
    batcher = KafkaProducer(
        linger_ms=200, batch_size=1 << 20, **kafka_python_options(settings, endpoints)
    )
    for customer in customers:
        state = CustomerState(customer, balances={"存款": 100.0})
        partition = int(last[customer][0].rsplit(":", 1)[1])
        batcher.send(
            changelog,
            key=json.dumps(customer).encode(),
            value=encode_state(state),
            partition=partition,
        )
    batcher.flush()
    batcher.close()

    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    latest: dict[str, dict[str, Any]] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            latest = latest_states(settings, endpoints, changelog, idle_ms=1500)
            if all(
                latest.get(c, {}).get("positions", {}).get(last[c][0]) == last[c][1]
                for c in customers
            ):
                break
        # To tell a worker that never processed an event from a reader that missed its update.
        committed = group_offsets(settings, endpoints, names.engine_group, names.transactions)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode(errors="replace")
    balances = {c: latest.get(c, {}).get("balances", {}).get("存款") for c in customers}
    lost = [c for c, balance in balances.items() if balance != 101.0]
    notes = [
        line for line in output.splitlines() if "ERROR" in line or "Error in recovery" in line
    ][:5]
    on_disk = _table_on_disk(stack, names.engine_group)
    assert {c: on_disk.get(c) for c in customers} == {c: latest.get(c) for c in customers}, (
        "the worker's RocksDB does not hold what its changelog says"
    )
    assert not lost, (
        f"{len(lost)} of {len(customers)} customers lost their recovered state, e.g. {lost[:3]}: "
        f"{[latest.get(c) for c in lost[:3]]}; events at {[last[c] for c in lost[:3]]}; "
        f"the worker's committed offsets: {committed}; {notes}; "
        f"worker output: {output[-3000:]}"
    )


def _table_on_disk(stack: EmbeddedStack, group: str) -> dict[str, Any]:
    """Every state in the holdings databases a stopped worker left in its table dir."""
    assert stack.endpoints.stack_dir is not None
    states: dict[str, Any] = {}
    for path in sorted(
        (stack.endpoints.stack_dir / "tables" / group).glob("worker-*/holdings-*.db")
    ):
        options = rocksdict.Options(raw_mode=True)
        db = rocksdict.Rdict(str(path), options, access_type=rocksdict.AccessType.read_only())
        try:
            for key, value in db.items():
                if not key.startswith(b"__"):  # Faust's offset key
                    states[json.loads(key)] = json.loads(value)
        finally:
            db.close()
    assert states, "no RocksDB table on disk: is the worker's store still rocksdb:// ?"
    return states
