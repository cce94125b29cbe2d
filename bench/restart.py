"""Restart-to-first-event after kill -9, against a cold start measured in the same run.

On the embedded stack: a worker's first start, draining N queued events and then a probe
event, is the baseline; it is then killed with SIGKILL, restarted, and the time until it
applies the next probe event is measured (group join, changelog recovery of 500
customers' states with the fence, re-reading uncommitted events, then the probe).

Run: .venv/bin/python bench/restart.py [--events N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from rich.console import Console
from rich.table import Table

from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from xsell.embedded import EmbeddedStack

XSELL = str(Path(sys.executable).with_name("xsell"))


def _event(i: int) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{i}",
            "customer_id": f"c{i % 500}",
            "ts": "2026-11-23T10:00:00+08:00",
            "product": "存款",
            "kind": "credit",
            "amount": 1.0,
        }
    ).encode()


def _applied(consumer: KafkaConsumer, event_id_offset: tuple[str, int], deadline: float) -> bool:
    source, offset = event_id_offset
    while time.monotonic() < deadline:
        for message in consumer:
            state = json.loads(message.value)
            if state.get("positions", {}).get(source) == offset:
                return True
    return False


def _time_to_apply(
    env: dict[str, str],
    settings: Settings,
    stack: EmbeddedStack,
    topic: str,
    changelog: str,
    index: int,
) -> tuple[float, subprocess.Popen[bytes]]:
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    meta = producer.send(topic, key=f"c{index % 500}".encode(), value=_event(index)).get(30)
    producer.close()
    consumer = KafkaConsumer(
        changelog,
        auto_offset_reset="latest",
        consumer_timeout_ms=200,
        **kafka_python_options(settings, stack.endpoints),
    )
    consumer.poll(100)  # join at the end of the changelog before the worker starts
    started = time.monotonic()
    worker = subprocess.Popen(
        [XSELL, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not _applied(consumer, (f"{meta.topic}:{meta.partition}", meta.offset), started + 120):
        msg = "the worker did not apply the event within 120 s"
        raise RuntimeError(msg)
    consumer.close()
    return time.monotonic() - started, worker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5_000, help="events applied before the kill")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, restart = [], []
    with EmbeddedStack(Settings(state_dir=Path(tempfile.mkdtemp(prefix="xsell-bench-")))) as stack:
        for run in range(args.runs):
            prefix = f"b{uuid.uuid4().hex[:6]}"
            settings = stack.settings.model_copy(update={"topic_prefix": prefix})
            names = TopicNames(prefix)
            ensure_topics(settings, stack.endpoints, names.all())
            env = {
                **os.environ,
                "XSELL_STATE_DIR": str(stack.settings.state_dir),
                "XSELL_TOPIC_PREFIX": prefix,
                "XSELL_REDIS_KEY_PREFIX": prefix,
            }
            changelog = TopicNames(prefix).holdings_changelog
            producer = KafkaProducer(
                linger_ms=20, **kafka_python_options(settings, stack.endpoints)
            )
            for i in range(args.events):
                producer.send(names.transactions, key=f"c{i % 500}".encode(), value=_event(i))
            producer.flush()
            producer.close()
            seconds, worker = _time_to_apply(
                env, settings, stack, names.transactions, changelog, args.events
            )
            cold.append(seconds)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            seconds, worker = _time_to_apply(
                env, settings, stack, names.transactions, changelog, args.events + 1
            )
            restart.append(seconds)
            worker.terminate()
            worker.wait(60)
            print(
                f"run {run + 1}: cold {cold[-1]:.2f} s, after kill -9 {restart[-1]:.2f} s",
                flush=True,
            )
    table = Table(
        title=f"worker start to next event applied ({args.events:,} events of state, median of {args.runs})",
        title_justify="left",
    )
    for column in ("figure", "median", "range", "ratio"):
        table.add_column(column)
    table.add_row(
        "cold start (baseline)",
        f"{statistics.median(cold):.2f} s",
        f"{min(cold):.2f}-{max(cold):.2f}",
        "1.00x",
    )
    table.add_row(
        "restart after kill -9",
        f"{statistics.median(restart):.2f} s",
        f"{min(restart):.2f}-{max(restart):.2f}",
        f"{statistics.median(restart) / statistics.median(cold):.2f}x",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
