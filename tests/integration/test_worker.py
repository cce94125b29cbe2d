"""`xsell worker` on the embedded stack: snapshot rows and transactions in; alerts and dead letters out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from rules_store.bundle.schema import RETAIL_SCHEMA, encode_profile
from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints
from rules_store.store.redis_store import BundleStore, encode_bundle, open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from tests.default_catalog import PRODUCT_BALANCES, PRODUCTS, products_to_mask
from tests.integration.reading import read_json, table_updates
from tests.integration.web_engine import request
from training.batch import cross_sell
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, load_retail, train_retail
from xsell.embedded import EmbeddedStack, redis_server_argv
from xsell.processes import ChildProcess, free_port

XSELL = str(Path(sys.executable).with_name("xsell"))
BAD_EVENTS = {
    "malformed JSON": b'{"event_id": "x1", ',
    "missing field": json.dumps(
        {
            "customer_id": "c",
            "ts": "2026-11-23T09:00:00+08:00",
            "product": "国债",
            "kind": "credit",
            "amount": 1,
        }
    ).encode(),
    "unknown product": json.dumps(
        {
            "event_id": "x3",
            "customer_id": "c",
            "ts": "2026-11-23T09:00:00+08:00",
            "product": "比特币",
            "kind": "credit",
            "amount": 1,
        }
    ).encode(),
    "negative amount": json.dumps(
        {
            "event_id": "x4",
            "customer_id": "c",
            "ts": "2026-11-23T09:00:00+08:00",
            "product": "国债",
            "kind": "credit",
            "amount": -5,
        }
    ).encode(),
    "wrong type": json.dumps(
        {
            "event_id": "x5",
            "customer_id": "c",
            "ts": "2026-11-23T09:00:00+08:00",
            "product": "国债",
            "kind": "credit",
            "amount": "5",
        }
    ).encode(),
    "not an object": b"[1, 2, 3]",
}


def output_of(worker: subprocess.Popen[bytes]) -> str:
    worker.terminate()
    return worker.communicate(timeout=60)[0].decode(errors="replace")[-3000:]


def test_worker_turns_snapshot_and_transactions_into_alerts_and_routes_bad_events(
    stack: EmbeddedStack, isolated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stream offers what the batch offers when no outcome has taught it otherwise and
    # Thompson sampling does not explore (tests/unit/test_adaptive_offers.py).
    monkeypatch.setenv("XSELL_THOMPSON", "false")
    prefix = isolated
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    endpoints = stack.endpoints
    names = TopicNames(prefix)

    customers = generate_retail(3_000, seed=21, dirty_share=0.0)
    path = tmp_path / "c.del"
    write_retail(customers, path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=4)).bundle
    store = BundleStore(open_redis(settings, endpoints), prefix)
    version = store.publish(bundle)
    store.activate(version)
    ensure_topics(settings, endpoints, names.all())

    # 40 customers who lack 理财: their snapshot row, then a credit to 理财.
    wealth = products_to_mask(["理财"])
    rows = [r for r in customers.to_dict("records") if r["理财余额"] == 0][:40]
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    for row in rows:
        producer.send(
            names.holdings_snapshot,
            key=row["客户编号"].encode(),
            value=json.dumps(row, ensure_ascii=False).encode(),
        )
    producer.flush()

    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # Wait until every snapshot row is in the holdings table (its changelog), so the
        # credits below find the customers' profiles.
        applied = table_updates(settings, endpoints, prefix, want=len(rows))
        assert len({r["customer_id"] for r in applied}) == len(rows), output_of(worker)
        for i, row in enumerate(rows):
            event = {
                "event_id": f"e{i}",
                "customer_id": row["客户编号"],
                "ts": "2026-11-23T10:00:00+08:00",
                "product": "理财",
                "kind": "credit",
                "amount": 10000.0,
                "branch_id": "b1",
            }
            producer.send(
                names.transactions,
                key=row["客户编号"].encode(),
                value=json.dumps(event, ensure_ascii=False).encode(),
            )
        for raw in BAD_EVENTS.values():
            producer.send(names.transactions, key=b"c", value=raw)
        # A profile event without its fields is refused; a complete one is taken.
        broken_profile = {
            "customer_id": rows[0]["客户编号"],
            "ts": "2026-11-23T11:00:00+08:00",
            "年龄": 40,
        }
        producer.send(
            names.profiles,
            key=rows[0]["客户编号"].encode(),
            value=json.dumps(broken_profile, ensure_ascii=False).encode(),
        )
        profile = {**rows[1], "customer_id": rows[1]["客户编号"], "ts": "2026-11-23T11:00:00+08:00"}
        producer.send(
            names.profiles,
            key=rows[1]["客户编号"].encode(),
            value=json.dumps(profile, ensure_ascii=False).encode(),
        )
        producer.flush()
        producer.close()

        dead = read_json(settings, endpoints, names.dead_letters, want=len(BAD_EVENTS) + 1)
        alerts = read_json(settings, endpoints, names.cross_sell_alerts, want=len(rows))
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode(errors="replace")

    assert len(dead) == len(BAD_EVENTS) + 1, output[-3000:]
    assert any(
        d["reason"].startswith("profile: field '性别' is missing")
        and d["source"]["topic"] == names.profiles
        for d in dead
    )
    reasons = " | ".join(d["reason"] for d in dead)
    for expected in (
        "not JSON",
        "missing field 'event_id'",
        "unknown product '比特币'",
        "'amount' must be >= 0",
        "'amount' must be a finite number",
        "expected a JSON object",
    ):
        assert expected in reasons
    assert all(d["raw_base64"] for d in dead)
    assert "Crashed" not in output  # the agent was never restarted

    by_customer = {a["customer_id"]: a for a in alerts}

    # Batch and stream agree: `xsell cross-sell`'s best offer for the same customers after
    # the same credit is the product each alert offers.
    after_credit = customers[customers["客户编号"].isin([r["客户编号"] for r in rows])].copy()
    after_credit["理财余额"] = 10000.0
    write_retail(after_credit, tmp_path / "after.del", "del")
    batch = cross_sell(bundle, load_retail(tmp_path / "after.del", bundle.schema))
    best = batch[batch["rank"] == 1].set_index("客户编号")
    for customer, alert in by_customer.items():
        assert best.loc[customer, "product"] == alert["product"]
        assert best.loc[customer, "segment"] == alert["segment"]
    for row in rows:
        held = 0
        for i, product in enumerate(bundle.catalog.products):
            if any(row[c] != 0 for c in product.balances):
                held |= 1 << i
        held |= wealth
        segment = bundle.segment_model.assign_segment(encode_profile(bundle.schema, row))
        expected = bundle.recommend(held, segment)
        alert = by_customer.get(row["客户编号"])
        if not expected:
            assert alert is None
            continue
        assert alert is not None, output[-3000:]
        assert alert["segment"] == segment
        assert alert["product"] == PRODUCTS[expected[0].item]
        assert alert["bundle_version"] == version
        assert alert["branch_id"] == "b1"
        assert alert["product"] != "理财"


def test_contact_policy_caps_alerts_per_customer_per_day(
    stack: EmbeddedStack, isolated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a cap these four credits give two alerts (two different products, the
    # cool-down keeping each product to one); with a cap of one a day, only the first.
    monkeypatch.setenv("XSELL_MAX_ALERTS_PER_DAY", "1")
    prefix = isolated
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    endpoints = stack.endpoints
    names = TopicNames(prefix)
    customers = generate_retail(2_000, seed=5, dirty_share=0.0)
    path = tmp_path / "c.del"
    write_retail(customers, path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3, min_lift=1.0)).bundle
    store = BundleStore(open_redis(settings, endpoints), prefix)
    store.activate(store.publish(bundle))
    ensure_topics(settings, endpoints, names.all())
    # A customer holding only a deposit, so that every credit below changes the held set.
    row = next(
        r
        for r in customers.to_dict("records")
        if all(
            r[c] == 0
            for c in PRODUCT_BALANCES["保险"]
            + PRODUCT_BALANCES["国债"]
            + PRODUCT_BALANCES["积存金"]
            + PRODUCT_BALANCES["理财"]
        )
    )
    customer = row["客户编号"]
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    producer.send(
        names.holdings_snapshot,
        key=customer.encode(),
        value=json.dumps(row, ensure_ascii=False).encode(),
    )
    producer.flush()
    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert table_updates(settings, endpoints, prefix, want=1), output_of(worker)
        for i, product in enumerate(("保险", "国债", "积存金", "理财")):
            event = {
                "event_id": f"cap{i}",
                "customer_id": customer,
                "ts": f"2026-11-23T1{i}:00:00+08:00",
                "product": product,
                "kind": "credit",
                "amount": 1000.0,
            }
            producer.send(
                names.transactions,
                key=customer.encode(),
                value=json.dumps(event, ensure_ascii=False).encode(),
            )
        producer.flush()
        producer.close()
        # Wait until all four events are applied (the last one shows in the table's
        # changelog: a batch writes a customer's state once), then read alerts.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            updates = table_updates(settings, endpoints, prefix, want=1)
            if updates[-1]["balances"].get("理财", 0) >= 1000:
                break
        else:
            pytest.fail(f"the last credit never reached the table: {updates[-1]}")
        alerts = read_json(settings, endpoints, names.cross_sell_alerts, want=3, within_s=5)
    finally:
        worker.terminate()
        worker.communicate(timeout=60)
    assert [a["event_id"] for a in alerts] == ["cap0"]


def test_processing_goes_on_with_the_cached_bundle_when_redis_stops(
    stack: EmbeddedStack, isolated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = isolated
    port = free_port()
    argv = redis_server_argv(port, tmp_path)
    redis_server = ChildProcess("redis", argv, tmp_path / "redis.log")
    redis_server.start()
    redis_url = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv(
        "XSELL_REDIS_URL", redis_url
    )  # the worker's own Redis; the broker stays embedded
    settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    endpoints = stack.endpoints
    own = Endpoints(endpoints.kafka_bootstrap, redis_url, embedded_broker=True, embedded_redis=True)
    names = TopicNames(prefix)
    customers = generate_retail(2_000, seed=9, dirty_share=0.0)
    path = tmp_path / "c.del"
    write_retail(customers, path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    deadline = time.monotonic() + 10
    while True:
        try:
            store = BundleStore(open_redis(settings, own), prefix)
            store.activate(store.publish(bundle))
            break
        except ServiceUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    ensure_topics(settings, endpoints, names.all())
    rows = [r for r in customers.to_dict("records") if r["理财余额"] == 0][:20]
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    for row in rows:
        producer.send(
            names.holdings_snapshot,
            key=row["客户编号"].encode(),
            value=json.dumps(row, ensure_ascii=False).encode(),
        )
    producer.flush()
    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert len(table_updates(settings, endpoints, prefix, want=len(rows))) >= len(rows), (
            output_of(worker)
        )
        redis_server.stop()  # Redis goes away mid-stream
        for i, row in enumerate(rows):
            event = {
                "event_id": f"r{i}",
                "customer_id": row["客户编号"],
                "ts": "2026-11-23T10:00:00+08:00",
                "product": "理财",
                "kind": "credit",
                "amount": 5000.0,
            }
            producer.send(
                names.transactions,
                key=row["客户编号"].encode(),
                value=json.dumps(event, ensure_ascii=False).encode(),
            )
        producer.flush()
        producer.close()
        updates = table_updates(settings, endpoints, prefix, want=2 * len(rows))
        alerts = read_json(settings, endpoints, names.cross_sell_alerts, want=1, within_s=20)
        health = request(f"http://127.0.0.1:{os.environ['XSELL_WEB_PORT']}/health", token=None)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode(errors="replace")
        redis_server.stop()
    assert len(updates) >= 2 * len(rows), output[-2000:]  # every credit applied without Redis
    assert alerts, output[-2000:]  # and alerts still come, from the cached bundle
    assert {a["bundle_version"] for a in alerts} == {encode_bundle(bundle)[2]}
    # Still serving, so 200, but /health says what is missing.
    assert health.status == 200
    assert health.json()["status"] == "degraded"
    assert any(p.startswith("Redis:") for p in health.json()["problems"]), health.json()
