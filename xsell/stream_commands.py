"""Commands around the stream: load-snapshot and replay (kafka-python producers)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import click
from kafka import KafkaProducer
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


COMMANDS = (load_snapshot_cmd, replay_cmd)
