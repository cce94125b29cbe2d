"""Commands around the stream: load-snapshot and replay (kafka-python producers)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import click
from kafka import KafkaProducer
from rich.progress import track

from rules_store.errors import XsellError
from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from training.corporate_data import load_churn
from training.loading import read_months_table, read_snapshot
from xsell.click_types import DATE
from xsell.console import err, out
from xsell.embedded import resolve_endpoints
from xsell.options import (
    rate_option,
    schema_bundle_option,
    schema_model_option,
    wait_option,
    with_input_options,
)
from xsell.replaying import History, Sent, send_lines, snapshot_lines, unread
from xsell.schema_source import schema_for


def _producer(settings: Settings) -> tuple[KafkaProducer, TopicNames]:
    endpoints = resolve_endpoints(settings)
    names = TopicNames(settings.topic_prefix)
    ensure_topics(settings, endpoints, names.all())
    return KafkaProducer(linger_ms=20, **kafka_python_options(settings, endpoints)), names


@click.command("load-snapshot")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False))
@with_input_options
@click.option(
    "--months",
    "months_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Months table for the churn test (CSV: the schema's id column, 月份, 金融资产月日均; "
    "`xsell generate events` writes one), so the workers "
    "can compare this month against the previous three from the start.",
)
@click.option(
    "--as-of",
    "as_of",
    type=DATE,
    help="The day the snapshot's balances close (YYYY-MM-DD); default with --months: the "
    "last day of the table's latest month.",
)
@click.option(
    "--corporate",
    "corporate_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Corporate churn file (seed 001's columns; label columns optional): its fields "
    "join the rows by 客户编号, so churn alerts can carry the churn model's probability.",
)
@wait_option(
    "until the workers have read every row, so that events replayed next find their "
    "customers (a snapshot row replaces balances).",
    min_open=True,
)
@schema_model_option
@schema_bundle_option
@click.pass_obj
def load_snapshot_cmd(
    settings: Settings,
    path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    schema_path: Path | None,
    encoding: str | None,
    months_path: Path | None,
    as_of: date | None,
    corporate_path: Path | None,
    wait_s: float | None,
) -> None:
    """Publish a retail snapshot (.del/.csv/.parquet) as the workers' initial holdings.

    One JSON record per customer, with the bank's field names, keyed by customer id, to
    the holdings-snapshot topic. Rows with empty fields are left out and counted. The
    columns are those of the bundle given (--model DIR or --bundle VERSION), else of the
    --schema file (default: seed 001's layout).
    """
    schema = schema_for(settings, model_dir, bundle_ref, schema_path)
    history = None
    if months_path is not None:
        months = read_months_table(months_path, schema.id_column, encoding=encoding)
        history = History.ending_with_table(months)
        history = replace(history, as_of=as_of or history.as_of)
    elif as_of is not None:
        history = History(as_of, {})
    frame = read_snapshot(path, schema, encoding=encoding)
    corporate = None
    if corporate_path is not None:
        data = load_churn(corporate_path, encoding=encoding, unknown="code", need_labels=False)
        corporate = dict(zip(data.ids, data.features.to_dict("records"), strict=True))
    lines, incomplete = snapshot_lines(frame, schema.id_column, history, corporate)
    producer, names = _producer(settings)
    sent = send_lines(
        producer,
        names.holdings_snapshot,
        track(lines, description="publishing snapshot", console=err),
        key_field=schema.id_column,
    )
    producer.close()
    out.print(
        f"published {sent.count:,} customers to {names.holdings_snapshot}; {incomplete:,} rows with empty fields left out"
    )
    if history is not None:
        known = set(frame[schema.id_column].astype(str))
        unmatched = len(set(history.months) - known)
        out.print(
            f"balances as of {history.as_of}; months tables for "
            f"{len(set(history.months) & known):,} customers"
            + (f" ({unmatched:,} in the table are not in the snapshot)" if unmatched else "")
        )
    if corporate is not None:
        joined = len(set(corporate) & set(frame[schema.id_column].astype(str)))
        out.print(f"corporate fields for {joined:,} customers ({len(corporate):,} in the file)")
    if wait_s is not None:
        _wait_until_read(settings, names.holdings_snapshot, sent, wait_s)


def _wait_until_read(settings: Settings, topic: str, sent: Sent, wait_s: float) -> None:
    endpoints = resolve_endpoints(settings)
    deadline = time.monotonic() + wait_s
    with err.status("waiting for the workers to read the snapshot"):
        while left := unread(settings, endpoints, topic, sent.ends):
            if time.monotonic() > deadline:
                done = sum(committed for committed, _ in left.values())
                msg = (
                    f"the workers have not read the whole snapshot within {wait_s:.0f}s "
                    f"(partition: (read, sent) {left}, {done:,} read in those partitions). "
                    "Is `xsell worker` running, with the same XSELL_TOPIC_PREFIX?"
                )
                raise XsellError(msg)
            time.sleep(0.5)
    out.print("the workers have read every snapshot row")


@click.command("replay")
@click.argument(
    "path", metavar="FILE", type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@rate_option(None)
@click.pass_obj
def replay_cmd(settings: Settings, path: Path, rate: float | None) -> None:
    """Send a JSON-lines file of transaction events to the transactions topic.

    Each line is sent as it is, keyed by its customer_id when it has one; a malformed
    line is sent too (the workers route it to the dead-letter topic).
    """
    producer, names = _producer(settings)
    lines = path.read_bytes().splitlines()
    started = time.monotonic()
    sent = send_lines(
        producer,
        names.transactions,
        track(lines, description=f"replaying {path.name}", console=err),
        rate=rate,
    )
    producer.close()
    elapsed = time.monotonic() - started
    out.print(
        f"sent {sent.count:,} events to {names.transactions} in {elapsed:.1f}s ({sent.count / max(elapsed, 1e-9):,.0f}/s)"
    )


COMMANDS = (load_snapshot_cmd, replay_cmd)
