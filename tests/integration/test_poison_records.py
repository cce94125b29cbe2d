"""Records built to break a worker (issue 14) are dead-lettered, and the worker goes on.

Each record below once crashed an agent for good or was dropped without a trace. They are
sent to a running worker on every input topic, then valid records; every bad one must be
in the dead-letter topic (with its source and a size the producer accepts), every good
one applied, and /health must still say "ok".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from tests.integration.reading import read_json, table_updates
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack

XSELL = str(Path(sys.executable).with_name("xsell"))
DAY = "2026-11-23T10:00:00+08:00"


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": "p",
        "customer_id": "poison",
        "ts": DAY,
        "product": "理财",
        "kind": "credit",
        "amount": 1,
    } | fields


def _with_raw(field: str, literal: str) -> bytes:
    """A transaction whose `field` is written as a raw JSON literal."""
    return json.dumps(_event(**{field: "@@"}), ensure_ascii=False).replace('"@@"', literal).encode()


DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
POISON_TRANSACTIONS: dict[str, bytes | None] = {
    "tombstone": None,
    "deep array": DEEP,
    "deep object": DEEP_OBJECT,
    "5,000-digit amount": _with_raw("amount", "1" * 5_000),
    "1e400 as an integer": _with_raw("amount", "1" + "0" * 400),
    "NaN amount": _with_raw("amount", "NaN"),
    "ts 9999-12-31": json.dumps(_event(ts="9999-12-31T00:00:00+08:00")).encode(),
    "ts 0001-01-01": json.dumps(_event(ts="0001-01-01T00:00:00+08:00")).encode(),
    "a year ahead": json.dumps(_event(ts="2027-11-30T10:00:00+08:00")).encode(),
    "dated 2100": json.dumps(_event(ts="2100-01-01T10:00:00+08:00")).encode(),
    "1 MB product": json.dumps(_event(product="x" * 1_000_000)).encode(),
    "deep product": _with_raw("product", "[" * 900 + "]" * 900),
}
POISON_OTHERS: dict[str, bytes | None] = {"tombstone": None, "deep": DEEP_OBJECT}
PRODUCER_LIMIT = 1_048_576  # Faust's and kafka-python's default max request size


def _health(port: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_poison_records_are_dead_lettered_and_valid_ones_after_them_applied(
    stack: EmbeddedStack, isolated: str, tmp_path: Path
) -> None:
    prefix = isolated
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    endpoints, names = stack.endpoints, TopicNames(prefix)
    customers = generate_retail(1_500, seed=14, dirty_share=0.0)
    path = tmp_path / "c.del"
    write_retail(customers, path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    store = BundleStore(open_redis(settings, endpoints), prefix)
    store.activate(store.publish(bundle))
    ensure_topics(settings, endpoints, names.all())
    rows = customers.to_dict("records")[:12]
    producer = KafkaProducer(
        max_request_size=4 * PRODUCER_LIMIT, **kafka_python_options(settings, endpoints)
    )
    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # Poison first on every topic, then valid records behind it in the same partitions.
        for topic in (names.holdings_snapshot, names.profiles):
            for raw in POISON_OTHERS.values():
                for row in rows:
                    producer.send(topic, key=row["客户编号"].encode(), value=raw)
        for raw in POISON_TRANSACTIONS.values():
            for row in rows:
                producer.send(names.transactions, key=row["客户编号"].encode(), value=raw)
        for row in rows:
            key = row["客户编号"].encode()
            producer.send(
                names.holdings_snapshot, key=key, value=json.dumps(row, ensure_ascii=False).encode()
            )
        producer.flush()
        assert len(table_updates(settings, endpoints, prefix, want=len(rows))) >= len(rows)
        for i, row in enumerate(rows):
            credit = _event(event_id=f"ok{i}", customer_id=row["客户编号"], amount=12_345.0)
            producer.send(
                names.transactions,
                key=row["客户编号"].encode(),
                value=json.dumps(credit, ensure_ascii=False).encode(),
            )
        producer.flush()
        poisoned = len(rows) * (len(POISON_TRANSACTIONS) + 2 * len(POISON_OTHERS))
        dead = read_json(settings, endpoints, names.dead_letters, want=poisoned)
        states: dict[str, dict[str, Any]] = {}
        for _ in range(30):
            for update in table_updates(settings, endpoints, prefix, want=2 * len(rows)):
                states[update["customer_id"]] = update
            if all(
                states.get(r["客户编号"], {}).get("balances", {}).get("理财", 0) >= 12_345
                for r in rows
            ):
                break
        status, health = _health(os.environ["XSELL_WEB_PORT"])
    finally:
        producer.close()
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode(errors="replace")

    assert len(dead) == poisoned, output[-3000:]
    by_topic: dict[str, int] = {}
    for record in dead:
        by_topic[record["source"]["topic"]] = by_topic.get(record["source"]["topic"], 0) + 1
    assert by_topic == {
        names.transactions: len(rows) * len(POISON_TRANSACTIONS),
        names.holdings_snapshot: len(rows) * len(POISON_OTHERS),
        names.profiles: len(rows) * len(POISON_OTHERS),
    }
    assert all("internal error" not in d["reason"] for d in dead), {d["reason"] for d in dead}
    assert all(len(json.dumps(d, ensure_ascii=False).encode()) < PRODUCER_LIMIT for d in dead)
    big = [d for d in dead if d["raw_size"] and d["raw_size"] > 1_000_000]
    assert len(big) == len(rows)
    assert all(d["truncated"] for d in big)
    reasons = {d["reason"] for d in dead}
    assert any("XSELL_MAX_FUTURE_DAYS" in r for r in reasons)
    assert any("tombstone" in r for r in reasons)
    for row in rows:  # every valid credit applied, behind the poison in its partition
        assert states[row["客户编号"]]["balances"]["理财"] >= 12_345, output[-3000:]
    assert (status, health["status"]) == (200, "ok"), health
    assert "Crashed" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
