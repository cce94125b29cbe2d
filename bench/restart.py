"""Restart to first processed event with N customers' state: RocksDB against memory, same run.

On the embedded stack: N customers' states (~1.6 KB of JSON each, a month of daily
totals, three months' averages, features, balances) are written straight into the
holdings changelog, with the worker's own codec, as a worker that had loaded a snapshot
of N customers would have left it. Then, for each store:

- rocksdb: a worker's first start recovers the whole changelog into RocksDB (the cold
  start, shown but not the figure); it is killed with SIGKILL, restarted, and the time
  from the restart to a probe event applied is measured: group join, recovery of the
  changelog's tail only, the partition clocks from the local states, the event.
- memory: the same restart reads the whole changelog back into memory.

Resident memory per customer: the worker's RSS once the probe is applied, less that of a
worker with an empty table, over N. The 1M run takes ~12 minutes on 2 cores, most of it
the memory store's and the cold start's full recoveries.

Run: .venv/bin/python bench/restart.py [--customers N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from kafka.partitioner.default import murmur2
from rich.console import Console
from rich.table import Table

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.churn import AssetHistory
from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import encode_state
from rules_store.settings import Settings
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack

XSELL = str(Path(sys.executable).with_name("xsell"))
DAY = "2026-11-23"  # the states' latest day and the probes' day: no day closes on a probe
WAIT_S = 3600.0


def _template(snapshot_topic: str) -> bytes:
    """One realistic state, its customer id and snapshot position left as placeholders."""
    days = {f"2026-10-{d:02d}": 10_000.0 + d for d in range(24, 32)}
    days |= {f"2026-11-{d:02d}": 12_000.5 + d for d in range(1, 24)}
    state = CustomerState(
        "CUSTOMER_ID",
        balances={
            p: 1234.56 for p in ("存款", "保险", "基金和积利宝", "理财", "国债", "贷款和信用卡")
        },
        branch_id="branch-007",
        positions={f"{snapshot_topic}:PARTITION": 123_456_789},
        features=tuple(float(i % 5) for i in range(28)),
        last_offered={"基金和积利宝": "2026-11-20T10:00:00+08:00"},
        alert_day="2026-11-20",
        alerts_on_day=1,
        assets=AssetHistory(
            days=days,
            months={"2026-08": 11_000.0, "2026-09": 11_500.0, "2026-10": 10_800.0},
            since="2026-08-01",
            latest=DAY,
            judged="2026-11-22",
            due="2026-12-15",
        ),
    )
    return encode_state(state)


def _partition(customer: str, partitions: int) -> int:
    # kafka-python's and aiokafka's default partitioner: the worker sees the customer here.
    return int(murmur2(customer.encode()) & 0x7FFFFFFF) % partitions


def _write_states(settings: Settings, stack: EmbeddedStack, names: TopicNames, n: int) -> int:
    template = _template(names.holdings_snapshot)
    producer = KafkaProducer(
        linger_ms=50,
        batch_size=1 << 20,
        max_request_size=8 << 20,
        **kafka_python_options(settings, stack.endpoints),
    )
    started, size = time.monotonic(), 0
    for i in range(n):
        customer = f"c{i}"
        partition = _partition(customer, settings.topic_partitions)
        value = template.replace(b"CUSTOMER_ID", customer.encode()).replace(
            b"PARTITION", str(partition).encode()
        )
        size += len(value)
        producer.send(
            names.holdings_changelog,
            key=json.dumps(customer).encode(),
            value=value,
            partition=partition,
        )
        if (i + 1) % 100_000 == 0:
            print(f"  {i + 1:,} states written ({time.monotonic() - started:.0f} s)", flush=True)
    producer.flush()
    producer.close()
    return size // max(n, 1)


def _probe(i: int) -> bytes:
    return json.dumps(
        {
            "event_id": f"probe{i}",
            "customer_id": "c0",
            "ts": f"{DAY}T10:00:00+08:00",
            "product": "存款",
            "kind": "credit",
            "amount": 1.0,
        }
    ).encode()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Start:
    seconds: float
    rss_kib: int
    worker: subprocess.Popen[bytes]


def _start_to_probe(
    env: dict[str, str], settings: Settings, stack: EmbeddedStack, names: TopicNames, i: int
) -> Start:
    """Send a probe event, start a worker, and time it until the probe's state is written."""
    options = kafka_python_options(settings, stack.endpoints)
    producer = KafkaProducer(**options)
    meta = producer.send(names.transactions, key=b"c0", value=_probe(i)).get(30)
    producer.close()
    source = f"{meta.topic}:{meta.partition}"
    consumer = KafkaConsumer(
        names.holdings_changelog, auto_offset_reset="latest", consumer_timeout_ms=500, **options
    )
    consumer.poll(100)  # at the end of the changelog before the worker starts
    started = time.monotonic()
    worker = subprocess.Popen(
        [XSELL, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.monotonic() < started + WAIT_S:
            for message in consumer:
                if json.loads(message.value).get("positions", {}).get(source) == meta.offset:
                    return Start(time.monotonic() - started, _rss_kib(worker.pid), worker)
            if worker.poll() is not None:
                msg = f"the worker exited ({worker.returncode}) before applying the probe"
                raise RuntimeError(msg)
    finally:
        consumer.close()
    worker.kill()
    msg = f"the worker did not apply the probe within {WAIT_S:.0f} s"
    raise RuntimeError(msg)


def _kill(start: Start) -> None:
    start.worker.send_signal(signal.SIGKILL)
    start.worker.wait()


def _env(settings: Settings, prefix: str, store: str, table_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XSELL_STATE_DIR": str(settings.state_dir),
        "XSELL_TOPIC_PREFIX": prefix,
        "XSELL_REDIS_KEY_PREFIX": prefix,
        "XSELL_TABLE_STORE": store,
        "XSELL_TABLE_DIR": str(table_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.customers
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-"))
    write_retail(generate_retail(300, seed=2, dirty_share=0.0), work / "c.del", "del")
    bundle = train_retail(work / "c.del", RETAIL_SCHEMA, TrainParams(segments=2)).bundle
    with EmbeddedStack(Settings(state_dir=work / "state")) as stack:
        prefixes = {"empty": f"e{uuid.uuid4().hex[:6]}", "full": f"b{uuid.uuid4().hex[:6]}"}
        for prefix in prefixes.values():
            settings = stack.settings.model_copy(update={"topic_prefix": prefix})
            names = TopicNames(prefix)
            ensure_topics(settings, stack.endpoints, (*names.all(), names.holdings_changelog))
            store = BundleStore(open_redis(settings, stack.endpoints), prefix)
            store.activate(store.publish(bundle))
        settings = stack.settings.model_copy(update={"topic_prefix": prefixes["full"]})
        names = TopicNames(prefixes["full"])
        print(f"writing {n:,} customers' states into {names.holdings_changelog}", flush=True)
        state_bytes = _write_states(settings, stack, names, n)

        empty = stack.settings.model_copy(update={"topic_prefix": prefixes["empty"]})
        env = _env(empty, prefixes["empty"], "rocksdb", work / "tables-empty")
        baseline = _start_to_probe(env, empty, stack, TopicNames(prefixes["empty"]), 0)
        _kill(baseline)
        print(f"empty table: {baseline.seconds:.1f} s, RSS {baseline.rss_kib / 1024:.0f} MiB")

        env = _env(settings, prefixes["full"], "rocksdb", work / "tables")
        cold = _start_to_probe(env, settings, stack, names, 1)
        _kill(cold)
        print(
            f"rocksdb cold start (whole changelog into RocksDB): {cold.seconds:.1f} s", flush=True
        )
        rocks = _start_to_probe(env, settings, stack, names, 2)
        _kill(rocks)
        print(f"rocksdb restart after kill -9: {rocks.seconds:.1f} s", flush=True)

        env = _env(settings, prefixes["full"], "memory", work / "tables")
        memory = _start_to_probe(env, settings, stack, names, 3)
        _kill(memory)
        print(f"memory restart after kill -9: {memory.seconds:.1f} s", flush=True)

    table = Table(
        title=f"restart to first processed event, {n:,} customers' state "
        f"({state_bytes:,} bytes of JSON each)",
        title_justify="left",
    )
    for column in ("store", "restart to first event", "ratio", "RSS", "RSS per customer"):
        table.add_column(column)
    for name, start in (("memory (baseline)", memory), ("rocksdb (default)", rocks)):
        per_customer = (start.rss_kib - baseline.rss_kib) * 1024 / max(n, 1)
        table.add_row(
            name,
            f"{start.seconds:.1f} s",
            f"{start.seconds / memory.seconds:.2f}x",
            f"{start.rss_kib / 1024:.0f} MiB",
            f"{per_customer:,.0f} B",
        )
    Console().print(table)
    print(
        f"targets: rocksdb restart <= 15 s, <= 2,048 B per customer; cold start {cold.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
