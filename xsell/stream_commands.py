"""Commands around the stream: load-snapshot, replay, tail (kafka-python clients)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click
from kafka import KafkaConsumer, KafkaProducer
from rich.progress import track

from rules_store.schema import RETAIL_SCHEMA, load_schema
from rules_store.settings import Settings
from streams.kafka_clients import ensure_topics, kafka_python_options
from streams.topics import TopicNames
from training.loading import read_snapshot
from xsell.console import err, out
from xsell.embedded import resolve_endpoints


def _producer(settings: Settings) -> tuple[KafkaProducer, TopicNames]:
    endpoints = resolve_endpoints(settings)
    names = TopicNames(settings.topic_prefix)
    ensure_topics(settings, endpoints, names.all())
    return KafkaProducer(linger_ms=20, **kafka_python_options(settings, endpoints)), names


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


@click.command("load-snapshot")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--schema",
    "schema_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON schema file instead of the default retail layout.",
)
@click.option("--encoding", help="Text encoding of .del/.csv input (default: detect).")
@click.pass_obj
def load_snapshot_cmd(
    settings: Settings, path: Path, schema_path: Path | None, encoding: str | None
) -> None:
    """Publish a retail snapshot (.del/.csv/.parquet) as the workers' initial holdings.

    One JSON record per customer, with the bank's field names, keyed by customer id, to
    the holdings-snapshot topic. Rows with empty fields are left out and counted.
    """
    schema = load_schema(schema_path) if schema_path else RETAIL_SCHEMA
    frame = read_snapshot(path, schema, encoding=encoding)
    complete = frame.notna().all(axis=1)
    producer, names = _producer(settings)
    sent = 0
    for record in track(
        frame[complete].to_dict("records"), description="publishing snapshot", console=err
    ):
        row = {k: _plain(v) for k, v in record.items()}
        customer = str(row[schema.id_column])
        producer.send(
            names.holdings_snapshot,
            key=customer.encode(),
            value=json.dumps(row, ensure_ascii=False).encode(),
        )
        sent += 1
    producer.flush()
    producer.close()
    out.print(
        f"published {sent:,} customers to {names.holdings_snapshot}; {int((~complete).sum()):,} rows with empty fields left out"
    )


@click.command("replay")
@click.argument(
    "path", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Events per second (default: as fast as possible).",
)
@click.pass_obj
def replay_cmd(settings: Settings, path: Path, rate: float | None) -> None:
    """Send a JSON-lines file of transaction events to the transactions topic.

    Each line is sent as it is, keyed by its customer_id when it has one; a malformed
    line is sent too (the workers route it to the dead-letter topic).
    """
    producer, names = _producer(settings)
    lines = path.read_bytes().splitlines()
    started = time.monotonic()
    for i, line in enumerate(track(lines, description=f"replaying {path.name}", console=err)):
        if not line.strip():
            continue
        try:
            key = str(json.loads(line)["customer_id"]).encode()
        except (ValueError, KeyError, TypeError):
            key = None
        producer.send(names.transactions, key=key, value=line)
        if rate is not None:
            ahead = (i + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    producer.close()
    elapsed = time.monotonic() - started
    out.print(
        f"sent {len(lines):,} events to {names.transactions} in {elapsed:.1f}s ({len(lines) / max(elapsed, 1e-9):,.0f}/s)"
    )


def _line(topic_kind: str, record: dict[str, Any]) -> str:
    if topic_kind == "dead":
        source = record.get("source", {})
        return f"{record.get('dead_at', '')}  DEAD  {source.get('topic')}:{source.get('partition')}@{source.get('offset')}  {record.get('reason')}"
    evidence = record.get("evidence", {})
    why = (
        f"{'+'.join(evidence.get('antecedents', []))} → {'+'.join(evidence.get('consequents', []))} "
        f"conf {evidence.get('confidence', 0):.2f} lift {evidence.get('lift', 0):.2f}"
        if "confidence" in evidence
        else "fallback (most held in segment)"
    )
    return (
        f"{record.get('ts', '')}  {record.get('type', topic_kind)}  {record.get('customer_id')}  "
        f"branch {record.get('branch_id') or '-'}  seg {record.get('segment')}  offer {record.get('product')}  "
        f"{why}  [{str(record.get('alert_id', ''))[:8]}]"
    )


@click.command("tail")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["cross_sell", "churn", "dead"]),
    default="cross_sell",
    show_default=True,
    help="Which feed to follow.",
)
@click.option("--branch", help="Only alerts for this branch_id.")
@click.option(
    "--group",
    default="xsell-tail",
    show_default=True,
    help="Consumer group (a branch app uses its own).",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="Start at the oldest record instead of new ones (for a new group).",
)
@click.option("--max", "limit", type=click.IntRange(min=1), help="Stop after this many lines.")
@click.option(
    "--seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this long."
)
@click.option("--json", "as_json", is_flag=True, help="Print each record as JSON.")
@click.pass_obj
def tail_cmd(
    settings: Settings,
    kind: str,
    branch: str | None,
    group: str,
    from_beginning: bool,
    limit: int | None,
    seconds: float | None,
    as_json: bool,
) -> None:
    """Follow the alert or dead-letter feed as readable lines (Ctrl-C stops)."""
    endpoints = resolve_endpoints(settings)
    names = TopicNames(settings.topic_prefix)
    topic = {
        "cross_sell": names.cross_sell_alerts,
        "churn": names.churn_alerts,
        "dead": names.dead_letters,
    }[kind]
    consumer = KafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=500,  # wake up to check --seconds
        **kafka_python_options(settings, endpoints),
    )
    shown = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            for message in consumer:
                try:
                    record = json.loads(message.value)
                except ValueError:
                    continue
                if branch and record.get("branch_id") != branch:
                    continue
                line = json.dumps(record, ensure_ascii=False) if as_json else _line(kind, record)
                out.print(line, highlight=False)
                shown += 1
                if limit is not None and shown >= limit:
                    return
    finally:
        consumer.close()


COMMANDS = (load_snapshot_cmd, replay_cmd, tail_cmd)
