"""How fast Faust's own stream path can go on this machine, whatever the agent does.

The same N queued records (transaction-shaped JSON, 5,000 customers, 4 partitions) are
drained by:

- a plain aiokafka consumer that decodes each record (the baseline, same run);
- a Faust agent with an empty body, taking batches as the worker does
  (`stream.take_events(500, within=5 ms)`, the worker's app settings and fixes);
- the same agent decoding each record's JSON;
- the same agent also writing each batch's customers to a changelogged table, once per
  customer per batch (as the worker stores states).

Events/s from the first batch to the last. The worker's full pipeline (bench/stream.py)
cannot beat the empty agent: that is the ceiling of Faust's per-event path.

Run: .venv/bin/python bench/faust_ceiling.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from rules_store.settings import Endpoints, Settings
from streams.compat.faust_fixes import install_faust_fixes
from streams.compat.tansu import EMBEDDED_FETCH_WAIT_MS, install_fetch_wait
from streams.kafka.app import create_app, declare_topic
from streams.kafka.clients import ensure_topics, kafka_python_options
from xsell.embedded import EmbeddedStack

console = Console()
MODES = {
    "noop": "Faust agent, empty body",
    "decode": "Faust agent, JSON decode",
    "table": "Faust agent, decode + table write per customer per batch",
}


def _agent(mode: str, topic: str, count: int, result: Path) -> None:
    """Run as the Faust worker process (`--agent MODE`): drain `count` records, write the rate."""
    settings = Settings()
    endpoints = Endpoints(
        os.environ["BENCH_BOOTSTRAP"],
        os.environ["BENCH_REDIS"],
        embedded_broker=True,
        embedded_redis=True,
    )
    install_faust_fixes()
    install_fetch_wait(EMBEDDED_FETCH_WAIT_MS)
    app = create_app(settings, endpoints, app_id=f"ceiling-{topic}", web_enabled=False)
    source = declare_topic(app, topic, settings)
    table = app.Table(
        "t", default=None, partitions=settings.topic_partitions, key_type=str, value_type=bytes
    )
    seen = {"n": 0, "t0": 0.0}

    @app.agent(source)
    async def drain(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(500, within=0.005):  # type: ignore[attr-defined]
            seen["t0"] = seen["t0"] or time.perf_counter()
            if mode != "noop":
                changed = {}
                for event in events:
                    record = json.loads(event.value)
                    changed[record["customer_id"]] = (event.message.partition, event.value)
                if mode == "table":
                    for key, (partition, value) in changed.items():
                        table.data[key] = value
                        table.send_changelog(partition, key, value)
            seen["n"] += len(events)
            if seen["n"] >= count:
                result.write_text(str(seen["n"] / (time.perf_counter() - seen["t0"])))
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


async def _plain_consumer(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=EMBEDDED_FETCH_WAIT_MS,
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                started = started or time.perf_counter()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


def _queue(settings: Settings, stack: EmbeddedStack, count: int) -> str:
    topic = f"ceiling-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, stack.endpoints, (topic,))
    producer = KafkaProducer(linger_ms=5, **kafka_python_options(settings, stack.endpoints))
    for i in range(count):
        customer = f"C{i % 5000:05d}"
        event = {"event_id": f"e{i}", "customer_id": customer, "product": "存款", "amount": i}
        producer.send(topic, key=customer.encode(), value=json.dumps(event).encode())
    producer.flush()
    producer.close()
    return topic


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--agent", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent:
        _agent(args.agent, args.topic, args.events, args.result)
        return
    workdir = Path(tempfile.mkdtemp(prefix="xsell-bench-ceiling-"))
    settings = Settings(state_dir=workdir / "state")
    rates: dict[str, float] = {}
    with EmbeddedStack(settings, announce=False) as stack:
        topic = _queue(settings, stack, args.events)
        rates["plain"] = asyncio.run(
            _plain_consumer(stack.endpoints.kafka_bootstrap, topic, args.events)
        )
        for mode in MODES:
            topic = _queue(settings, stack, args.events)
            result = workdir / f"{mode}.rate"
            env = {
                **os.environ,
                "XSELL_STATE_DIR": str(workdir / "state"),
                "BENCH_BOOTSTRAP": stack.endpoints.kafka_bootstrap,
                "BENCH_REDIS": stack.endpoints.redis_url,
            }
            command = [sys.executable, __file__, "--agent", mode, "--topic", topic]
            command += ["--events", str(args.events), "--result", str(result)]
            with (workdir / f"{mode}.log").open("w") as log:
                subprocess.run(command, env=env, stdout=log, stderr=log, timeout=600, check=False)
            if not result.exists():
                console.print(f"[red]{mode}: no result; see {workdir / f'{mode}.log'}[/red]")
                continue
            rates[mode] = float(result.read_text())
    table = Table(title=f"Faust's ceiling, {args.events:,} records (embedded broker)")
    for column in ("figure", "events/s", "ratio"):
        table.add_column(column)
    table.add_row("aiokafka consumer, JSON decode (baseline)", f"{rates['plain']:,.0f}", "1.00x")
    for mode, label in MODES.items():
        if mode in rates:
            table.add_row(label, f"{rates[mode]:,.0f}", f"{rates[mode] / rates['plain']:.3f}x")
    console.print(table)


if __name__ == "__main__":
    main()
