"""`xsell evaluate`: every ranker side by side on hold-out and forward-in-time protocols,
and the pieces `xsell train retail` shares with it (the forward truth, the table)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import click
import numpy as np
import numpy.typing as npt
from rich.table import Table

from rules_store.bundle.schema import UnknownPolicy
from rules_store.settings import Settings
from rules_store.store.files import atomic_path
from training.encoding import MissingPolicy, RetailData
from training.rankers.choose import EvaluationPlan, deciding, evaluate_rankers
from training.rankers.fit import RankerParams, parse_rankers
from training.rankers.protocols import Evaluation
from training.rankers.report import write_evaluation_report
from training.rankers.truth import openings_from_events, openings_from_snapshot
from training.retail import TrainParams, load_retail
from training.segmentation import fit_segments
from xsell.console import err, out
from xsell.options import (
    events_truth_option,
    later_option,
    missing_option,
    out_option,
    rankers_option,
    sample_option,
    schema_from,
    seed_option,
    segments_option,
    unknown_category_option,
    with_input_options,
)
from xsell.progress import stage_progress

SHOWN = ("MAP@7", "HR@1", "HR@3", "NDCG@7", "MAP@7 all", "coverage@3", "with offer")


def forward_truth(
    data: RetailData,
    items: tuple[str, ...],
    events_path: Path | None,
    later_path: Path | None,
    *,
    load_later: Callable[[Path], RetailData],
) -> npt.NDArray[np.int64] | None:
    """Products opened after INPUT, per INPUT customer; None without later data."""
    if events_path is not None and later_path is not None:
        msg = "give --events FILE or --later SNAPSHOT, not both"
        raise click.UsageError(msg)
    if events_path is not None:
        opened, counts = openings_from_events(events_path, data.ids, items)
        err.print(
            f"{counts['openings']:,} openings of INPUT's customers in {events_path}"
            f" ({counts['other_customers']:,} of other customers left out)"
        )
        return opened
    if later_path is not None:
        later = load_later(later_path)
        opened, counts = openings_from_snapshot(
            data.ids, data.masks, later.ids, later.masks, source=str(later_path)
        )
        err.print(
            f"{counts['openers']:,} of {counts['common_customers']:,} customers in both snapshots "
            f"opened something ({counts['missing_later']:,} missing later, {counts['new_later']:,} new)"
        )
        return opened
    return None


def print_evaluations(evaluations: list[Evaluation], winner: str) -> None:
    for evaluation in evaluations:
        table = Table(
            title=f"{evaluation.protocol}: {evaluation.customers:,} customers, "
            f"{evaluation.with_truth:,} with a truth",
            title_justify="left",
        )
        shown = [c for c in SHOWN if c in next(iter(evaluation.metrics.values()))]
        table.add_column("ranker")
        for column in shown:
            table.add_column(column, justify="right")
        for name, figures in evaluation.metrics.items():
            label = f"[bold]{name}[/] (chosen)" if name == winner else name
            table.add_row(label, *(f"{figures[c]:.4f}" for c in shown))
        out.print(table)


def write_evaluation(
    out_dir: Path, evaluations: list[Evaluation], winner: str, facts: list[tuple[str, object]]
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    report, figures = out_dir / "report.html", out_dir / "evaluation.json"
    write_evaluation_report(report, evaluations, winner, facts)
    document = {"winner": winner, "protocols": [e.to_dict() for e in evaluations]}
    with atomic_path(figures) as tmp:
        tmp.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return [report, figures]


@click.command("evaluate")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@out_option("a directory for report.html and evaluation.json.", directory=True)
@events_truth_option
@later_option
@rankers_option
@sample_option
@segments_option
@seed_option("Used for splits, sampling and model fitting.")
@unknown_category_option()
@missing_option
@with_input_options
@click.pass_obj
def evaluate_cmd(
    _settings: Settings,
    input_path: Path,
    out_dir: Path,
    events_path: Path | None,
    later_path: Path | None,
    rankers: str,
    sample: int,
    segments: int | None,
    seed: int,
    unknown: str,
    missing: str,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """Compare the rankers on INPUT: hold-out (a held product hidden) and, with --events or
    --later, forward in time (the products opened after INPUT).

    Writes OUT/report.html (metrics, per-product precision and recall at 3, gain charts)
    and OUT/evaluation.json; the winner is the best forward MAP@7 (hold-out without later
    data), which `xsell train retail` puts into the bundle.
    """
    names = parse_rankers(rankers)
    schema = schema_from(schema_path)
    train = TrainParams(
        segments=segments,
        seed=seed,
        unknown=cast(UnknownPolicy, unknown),
        missing=cast(MissingPolicy, missing),
    )
    with stage_progress(err) as stages:
        data = load_retail(
            input_path,
            schema,
            encoding=encoding,
            unknown=train.unknown,
            missing=train.missing,
            stages=stages,
        )
        catalog = data.schema.products
        opened = forward_truth(
            data,
            catalog.names,
            events_path,
            later_path,
            load_later=lambda p: load_retail(
                p,
                schema,
                encoding=encoding,
                unknown=train.unknown,
                missing=train.missing,
                stages=stages,
            ),
        )
        with stages.stage("segment"):
            segmentation = fit_segments(
                data.features,
                data.feature_names,
                k=segments,
                seed=seed,
                fit_sample=train.fit_sample,
            )
        plan = EvaluationPlan(RankerParams(names=names, seed=seed), train, sample=sample)
        evaluations = evaluate_rankers(
            data,
            segmentation.labels,
            segmentation.model.n_segments,
            catalog,
            plan,
            opened=opened,
            stages=stages,
        )
        winner = deciding(evaluations).winner()
        facts: list[tuple[str, object]] = [
            ("input", input_path),
            ("forward truth", events_path or later_path or "none (hold-out decides)"),
            ("customers", f"{len(data.ids):,}"),
            ("segments", segmentation.model.n_segments),
            ("chosen", f"{winner} (best {deciding(evaluations).protocol} MAP@7)"),
            (
                "inputs left out",
                ", ".join(evaluations[0].notes.get("inputs_left_out", [])) or "none",
            ),
            ("propensity models", evaluations[0].notes.get("propensity_kinds", "not trained")),
        ]
        with stages.stage("report"):
            files = write_evaluation(out_dir, evaluations, winner, facts)
    print_evaluations(evaluations, winner)
    out.print(f"chosen: [bold]{winner}[/] (best {deciding(evaluations).protocol} MAP@7)")
    for path in files:
        out.print(f"wrote {path}")
