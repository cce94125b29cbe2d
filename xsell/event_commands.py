"""`xsell generate events`: transactions consistent with a retail snapshot."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.table import Table

from rules_store.settings import Settings
from rules_store.store.files import atomic_path
from training.event_generator import EventPlan, generate_events
from training.loading import read_snapshot, write_months_table
from xsell.click_types import DATE
from xsell.console import err, out
from xsell.options import (
    days_option,
    drainers_option,
    malformed_option,
    out_option,
    schema_bundle_option,
    schema_model_option,
    seed_option,
    with_input_options,
)
from xsell.progress import stage_progress
from xsell.schema_source import schema_args, schema_for


@click.command("events")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The retail snapshot (.del/.csv/.parquet) whose balances the events start from.",
)
@days_option
@click.option(
    "--start",
    type=DATE,
    default="2026-11-01",
    show_default=True,
    help="First day of event time (events are stamped +08:00). On the first of a month, "
    "the snapshot's months table (written beside the events) flags every drainer.",
)
@click.option(
    "--events-per-day",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Mean events per customer per day (how many are generated; the replay speed is "
    "`xsell replay --rate`).",
)
@drainers_option
@malformed_option(0)
@seed_option()
@out_option(
    "a JSON-lines file; beside it go a manifest (drainers, counts) and FILE.months.csv, "
    "the customers' months table for `xsell load-snapshot --months`."
)
@schema_model_option
@schema_bundle_option
@with_input_options
@click.pass_obj
def generate_events_cmd(
    settings: Settings,
    snapshot_path: Path,
    days: int,
    start: date,
    events_per_day: float,
    drainers: int,
    malformed: int,
    seed: int,
    out_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """Transaction events consistent with a snapshot, for `xsell replay`.

    Openings, closings, credits and debits, each with the balance after it, in
    event-time order, on the products of the bundle given (--model DIR or --bundle
    VERSION), else of the --schema file (default: seed 001's catalog). Load the same
    snapshot (`xsell load-snapshot`) before replaying.
    """
    schema = schema_for(settings, model_dir, bundle_ref, schema_path)
    plan = EventPlan(days, start, events_per_day, drainers, malformed, seed)
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
        f"{schema_args(model_dir, bundle_ref, schema_path)}"
    )
