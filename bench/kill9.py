"""Stress check: kill -9 a worker mid-stream, repeatedly; do the holdings end as with no crash?

Each trial queues 6,000 transactions for 60 customers, starts `xsell worker` and kills it
with SIGKILL after 4, 5 and 6 seconds, then lets a last worker finish, and compares every
customer's balances (read from the table's changelog) with a pure computation of the same
events. Prints the trials and any difference. `tests/integration/test_kill9.py` runs one
such trial (with alerts) in `make test`; this runs many, to look for rare losses.

Run: .venv/bin/python bench/kill9.py [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.events import parse_transaction
from rules_store.domain.holdings import CustomerState, apply_transaction
from rules_store.settings import Settings
from streams.kafka.changelog import latest_states
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from xsell.embedded import EmbeddedStack

XSELL = str(Path(sys.executable).with_name("xsell"))

CATALOG = RETAIL_SCHEMA.products
PRODUCTS = CATALOG.names


def trial(stack: EmbeddedStack, seed: int) -> dict[str, tuple[Any, Any]]:
    prefix = f"k{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    env = {
        **os.environ,
        "XSELL_STATE_DIR": str(stack.settings.state_dir),
        "XSELL_TOPIC_PREFIX": prefix,
        "XSELL_REDIS_KEY_PREFIX": prefix,
    }
    rng = random.Random(seed)
    customers = [f"c{i:03d}" for i in range(60)]
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    expected = {c: CustomerState(c) for c in customers}
    last: dict[str, tuple[str, int]] = {}
    for i in range(6_000):
        customer = rng.choice(customers)
        event = {
            "event_id": f"e{i}",
            "customer_id": customer,
            "ts": "2026-11-23T10:00:00+08:00",
            "product": rng.choice(PRODUCTS),
            "kind": rng.choice(["credit", "credit", "debit", "open"]),
            "amount": float(rng.randint(1, 500)),
        }
        meta = producer.send(
            names.transactions,
            key=customer.encode(),
            value=json.dumps(event, ensure_ascii=False).encode(),
        ).get(30)
        source = f"{meta.topic}:{meta.partition}"
        after = apply_transaction(
            expected[customer],
            parse_transaction(event, CATALOG),
            catalog=CATALOG,
            source=source,
            offset=meta.offset,
        )
        if after is None:  # cannot happen: every event has a new offset
            raise RuntimeError(event)
        expected[customer] = after
        last[customer] = (source, meta.offset)
    producer.close()
    changelog = TopicNames(prefix).holdings_changelog
    for kill_after in (4.0, 5.0, 6.0):
        worker = subprocess.Popen(
            [XSELL, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(kill_after)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    worker = subprocess.Popen(
        [XSELL, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latest: dict[str, dict[str, Any]] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            latest = latest_states(settings, stack.endpoints, changelog, idle_ms=1500)
            if all(
                latest.get(c, {}).get("positions", {}).get(last[c][0]) == last[c][1]
                for c in customers
            ):
                break
    finally:
        worker.terminate()
        worker.wait(60)
    return {
        c: (latest.get(c, {}).get("balances"), dict(expected[c].balances))
        for c in customers
        if latest.get(c, {}).get("balances") != dict(expected[c].balances)
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    failures = 0
    with EmbeddedStack(Settings(state_dir=Path(tempfile.mkdtemp(prefix="xsell-kill9-")))) as stack:
        for seed in range(args.trials):
            differ = trial(stack, seed)
            failures += bool(differ)
            print(
                f"trial {seed + 1}: {'OK' if not differ else f'{len(differ)} customer(s) differ: {list(differ.items())[:2]}'}",
                flush=True,
            )
    print(f"{failures} of {args.trials} trials ended with holdings different from the no-crash run")


if __name__ == "__main__":
    main()
