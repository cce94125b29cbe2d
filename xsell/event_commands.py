"""`xsell generate events`: transactions consistent with a retail snapshot."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.table import Table

from rules_store.store.files import atomic_path
from training.event_generator import EventPlan, generate_events
from training.loading import read_snapshot, write_months_table
from xsell.click_types import DATE
from xsell.console import err, out
from xsell.progress import stage_progress
from xsell.retail_commands import _schema, with_input_options


@click.command("events")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The retail snapshot (.del/.csv/.parquet) whose balances the events start from.",
)
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option(
    "--start",
    type=DATE,
    default="2026-11-01",
    show_default=True,
    help="First day of event time (events are stamped +08:00). On the first of a month, "
    "the snapshot's months table (written beside the events) flags every drainer.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Mean events per customer per day.",
)
@click.option(
    "--drainers",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Customers who move 90% of their financial assets out over the first three days, "
    "then go silent: the churn alerts the stream must raise.",
)
@click.option(
    "--malformed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Invalid records to mix in (bad JSON, missing field, unknown product, ...).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSON-lines file to write; beside it go a manifest (drainers, counts) and "
    "FILE.months.csv, the customers' months table for `xsell load-snapshot --months`.",
)
@with_input_options
def generate_events_cmd(
    snapshot_path: Path,
    days: int,
    start: date,
    rate: float,
    drainers: int,
    malformed: int,
    seed: int,
    out_path: Path,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """Transaction events consistent with a snapshot, for `xsell replay`.

    Openings, closings, credits and debits, each with the balance after it, in
    event-time order. Load the same snapshot (`xsell load-snapshot`) before replaying.
    """
    schema = _schema(schema_path)
    plan = EventPlan(days, start, rate, drainers, malformed, seed)
    with stage_progress(err) as stages:
        with stages.stage(f"read {snapshot_path}"):
            snapshot = read_snapshot(snapshot_path, schema, encoding=encoding)
        with stages.stage(f"generate {days} days of events"):
            generated = generate_events(snapshot, schema, plan)
        with stages.stage(f"write {out_path}"):
            with atomic_path(out_path) as tmp:
                tmp.write_bytes(b"\n".join(generated.lines) + b"\n")
            manifest = out_path.with_name(out_path.name + ".manifest.json")
            with atomic_path(manifest) as tmp:
                tmp.write_text(json.dumps(generated.manifest(plan), ensure_ascii=False, indent=2))
            months = out_path.with_name(out_path.name + ".months.csv")
            write_months_table(generated.months, months, schema.id_column)
    table = Table(title=f"{len(generated.lines):,} events, {start} + {days} days")
    table.add_column("kind")
    table.add_column("events", justify="right")
    for kind, count in sorted(generated.counts.items()):
        table.add_row(kind, f"{count:,}")
    out.print(table)
    out.print(f"wrote {out_path}, {manifest} ({len(generated.drainers)} drainers) and {months}")
    out.print(
        f"load the snapshot with its history first: xsell load-snapshot {snapshot_path} "
        f"--months {months} --as-of {plan.as_of}"
    )
