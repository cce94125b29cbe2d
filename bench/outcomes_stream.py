"""Outcome events against transactions through one worker, same run, same broker.

A worker loads a 5,000-customer snapshot, then drains N queued transactions (the full
pipeline, which sends cross-sell offers); then it drains answers to those offers, queued
the same way: each offer answered (accepted, declined or ignored at random), then answered
again until there are as many answers as transactions (a branch app retrying: repeats count
nothing but cost the same read, validation and state update). Rates are from the first
record taken to the last, as bench/stream.py measures them. Issue 18 asks that a
worker takes outcomes at least as fast as transactions.

Run: .venv/bin/python bench/outcomes_stream.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

from kafka import KafkaConsumer
from rich.console import Console
from rich.table import Table

# bench/ is on sys.path when run as a script: the same scenario as the stream bench.
from stream import CUSTOMERS, Scenario, drain, drain_rate  # type: ignore[import-not-found]

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.settings import Settings
from streams.kafka.clients import kafka_python_options
from training.event_generator import EventPlan, generate_events
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack
from xsell.replaying import History, snapshot_lines

console = Console()


def _offers(scenario: Scenario) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        scenario.names.cross_sell_alerts,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        **kafka_python_options(scenario.settings, scenario.stack.endpoints),
    )
    try:
        return [
            json.loads(m.value) for m in consumer if json.loads(m.value)["type"] == "cross_sell"
        ]
    finally:
        consumer.close()


def _answers(offers: list[dict[str, object]], count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    outcomes = [rng.choice(["accepted", "declined", "ignored"]) for _ in offers]
    answers: list[tuple[str, bytes]] = []
    while len(answers) < count:
        for offer, outcome in zip(offers, outcomes, strict=True):
            answer = {"alert_id": offer["alert_id"], "outcome": outcome, "ts": offer["ts"]}
            answers.append((str(offer["customer_id"]), json.dumps(answer).encode()))
    return answers[:count]


def _outcome_rate(scenario: Scenario, answers: list[tuple[str, bytes]]) -> float:
    for key, value in answers:
        scenario.producer.send(scenario.names.outcomes, key=key.encode(), value=value)
    scenario.producer.flush()
    worker = scenario.worker("outcomes")
    try:
        return drain(scenario, [worker], "outcomes", scenario.names.outcomes, len(answers))
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xsell-bench-outcomes-"))
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
    snapshot, _ = snapshot_lines(
        frame, RETAIL_SCHEMA.id_column, History(plan.as_of, generated.months)
    )
    with EmbeddedStack(settings) as stack:
        scenario = Scenario(stack, bundle, snapshot, workdir)
        tx_rate = drain_rate(scenario, generated.lines, workers=1)
        offers = _offers(scenario)
        answers = _answers(offers, len(generated.lines))
        out_rate = _outcome_rate(scenario, answers)
    table = Table(
        title=f"outcomes against transactions, one worker ({len(generated.lines):,} each)"
    )
    for column in ("input", "events/s", "ratio"):
        table.add_column(column)
    table.add_row("transactions, full pipeline (baseline)", f"{tx_rate:,.0f}", "1.00x")
    table.add_row(
        f"outcomes ({len(offers):,} offers answered, then repeats)",
        f"{out_rate:,.0f}",
        f"{out_rate / tx_rate:.2f}x",
    )
    console.print(table)


if __name__ == "__main__":
    main()
