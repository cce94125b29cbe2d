"""Retail commands (seed 001, 对私): generate, train retail, cross-sell, product-mining, mine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

import click
import pandas as pd
from rich.table import Table

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import UnknownPolicy
from rules_store.domain.rules import Rule, format_itemset
from rules_store.settings import Settings
from rules_store.store.local_store import load_bundle
from training.batch import cross_sell, product_mining
from training.customer_value import values_of
from training.encoding import MissingPolicy, RetailData
from training.generate import generate_retail, write_retail
from training.loading import file_format, read_item_table
from training.mining import (
    MAX_BITMASK_ITEMS,
    masks_from_table,
    mine_masks,
    mine_table_mlxtend,
    prune_redundant,
)
from training.outputs import (
    RULE_COLUMNS,
    rule_rows,
    save_run_bundle,
    write_csv,
    write_training_outputs,
)
from training.rankers.choose import (
    EvaluationPlan,
    deciding,
    evaluate_rankers,
    with_chosen_ranker,
)
from training.rankers.fit import RankerParams, parse_rankers
from training.report import write_report
from training.retail import TrainParams, load_retail, train_retail
from xsell.bundle_commands import open_store, publish_bundle
from xsell.console import err, out
from xsell.evaluate_command import forward_truth, print_evaluations, write_evaluation
from xsell.options import (
    activate_option,
    bundle_option,
    customers_option,
    dirty_share_option,
    encoding_option,
    events_truth_option,
    later_option,
    min_confidence_option,
    min_lift_option,
    min_support_option,
    missing_option,
    model_option,
    out_option,
    prune_option,
    rankers_option,
    sample_option,
    schema_from,
    seed_option,
    segments_option,
    top_k_option,
    unknown_category_option,
    with_input_options,
)
from xsell.progress import stage_progress


@click.group()
def generate() -> None:
    """Generate synthetic data in the bank's formats."""


@generate.command("retail")
@customers_option()
@out_option("a .del, .csv or .parquet file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["del", "csv", "parquet"]),
    help="File format (default: from the file name).",
)
@seed_option()
@encoding_option(default="utf-8")
@dirty_share_option(0.001)
def generate_retail_cmd(
    customers: int, out_path: Path, fmt: str | None, seed: int, encoding: str, dirty_share: float
) -> None:
    """Synthetic retail customers (seed 001 layout) with planted co-holding rules.

    Four personas (young professionals, payroll families, affluent investors, rural
    elders) each carry one planted rule; see training/generate.py for the table.
    """
    chosen = fmt or file_format(out_path)
    with stage_progress(err) as stages:
        with stages.stage(f"generate {customers:,} customers"):
            frame = generate_retail(customers, seed=seed, dirty_share=dirty_share)
        with stages.stage(f"write {out_path}"):
            write_retail(frame, out_path, chosen, encoding=encoding)  # type: ignore[arg-type]
    out.print(f"wrote {len(frame):,} customers to {out_path} ({chosen}, {encoding})")


@click.group()
def train() -> None:
    """Train models from customer snapshots."""


@train.command("retail")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@out_option("a directory for assignments, rules, model and report.", directory=True)
@segments_option
@min_support_option(0.02)
@min_confidence_option(0.3)
@min_lift_option(1.1)
@prune_option
@seed_option("Used for sampling and KMeans.")
@unknown_category_option()
@missing_option
@rankers_option
@events_truth_option
@later_option
@sample_option
@click.option(
    "--publish", is_flag=True, help="Publish the trained bundle to Redis (configured or embedded)."
)
@activate_option("Needs --publish.")
@with_input_options
@click.pass_obj
def train_retail_cmd(
    settings: Settings,
    input_path: Path,
    out_dir: Path,
    segments: int | None,
    min_support: float,
    min_confidence: float,
    min_lift: float,
    prune: bool,
    seed: int,
    unknown: str,
    missing: str,
    rankers: str,
    events_path: Path | None,
    later_path: Path | None,
    sample: int,
    publish: bool,
    activate: bool,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """Segment retail customers, mine per-segment product rules, train and compare the
    rankers and put the best into the bundle.

    Writes OUT/assignments.csv, OUT/rules.csv, OUT/rules.json (seed 001 format),
    OUT/model/ (for --model), OUT/report.html and OUT/evaluation/ (as `xsell evaluate`);
    --publish also stores it in Redis. The bundle serves the best forward MAP@7 (with
    --events or --later), else the best hold-out MAP@7.
    """
    if activate and not publish:
        msg = "--activate needs --publish"
        raise click.UsageError(msg)
    names = parse_rankers(rankers)
    params = TrainParams(
        segments=segments,
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        prune=prune,
        seed=seed,
        unknown=cast(UnknownPolicy, unknown),  # click.Choice has checked the value
        missing=cast(MissingPolicy, missing),
    )
    with stage_progress(err) as stages:
        schema = schema_from(schema_path)
        result = train_retail(input_path, schema, params, encoding=encoding, stages=stages)
        opened = forward_truth(
            result.data,
            result.bundle.items,
            events_path,
            later_path,
            load_later=lambda p: load_retail(
                p, schema, encoding=encoding, unknown=params.unknown, missing=params.missing
            ),
        )
        plan = EvaluationPlan(RankerParams(names=names, seed=seed), params, sample=sample)
        labels = result.segmentation.labels
        evaluations = evaluate_rankers(
            result.data,
            labels,
            len(result.bundle.segments),
            result.bundle.catalog,
            plan,
            opened=opened,
            stages=stages,
        )
        bundle = with_chosen_ranker(
            result.bundle, result.data, labels, evaluations, plan.rankers, stages=stages
        )
        result = replace(result, bundle=bundle)
        winner = deciding(evaluations).winner()
        with stages.stage("write"):
            files = write_training_outputs(
                out_dir, result.bundle, result.data.ids, result.segmentation.labels, result.values
            )
        with stages.stage("report"):  # after "write", so the report can show every stage's time
            write_report(out_dir / "report.html", result.bundle, stages.seconds)
            files.append(out_dir / "report.html")
            files += write_evaluation(
                out_dir / "evaluation",
                evaluations,
                winner,
                [("input", input_path), ("chosen", winner)],
            )
        # Last: a run that failed before here leaves no bundle for `--model` to take.
        files.append(save_run_bundle(out_dir, result.bundle))
    _print_training(result.bundle, result.data, files)
    print_evaluations(evaluations, winner)
    out.print(f"the bundle serves [bold]{winner}[/] (best {deciding(evaluations).protocol} MAP@7)")
    if publish:
        publish_bundle(settings, result.bundle, activate=activate)


def _print_training(bundle: Bundle, data: RetailData, files: list[Path]) -> None:
    report = data.report
    out.print(
        f"{report.rows_read:,} rows read, {report.rows_kept:,} kept, "
        f"{report.rows_with_missing:,} with missing values ({report.missing_policy})"
    )
    for u in report.unknown:
        out.print(
            f"[yellow]unknown value[/] {u.column} = {u.value!r}: {u.count} rows, coded as 'unknown'"
        )
    table = Table(title="segments", title_justify="left")
    for column in ("segment", "customers", "rules", "strongest rule", "confidence", "lift"):
        table.add_column(column, justify="right" if column not in ("strongest rule",) else "left")
    for s in bundle.segments:
        top = s.rules[0] if s.rules else None
        table.add_row(
            str(s.segment),
            f"{s.customers:,}",
            str(len(s.rules)),
            f"{format_itemset(top.antecedents, bundle.items)} → {format_itemset(top.consequents, bundle.items)}"
            if top
            else "-",
            f"{top.confidence:.3f}" if top else "-",
            f"{top.lift:.3f}" if top else "-",
        )
    out.print(table)
    for path in files:
        out.print(f"wrote {path}")


def _bundle_for(
    settings: Settings,
    input_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    schema_path: Path | None,
    encoding: str | None,
    missing: MissingPolicy,
) -> tuple[Bundle, RetailData]:
    """The bundle to score with (--model DIR, --bundle VERSION, or trained on INPUT) and INPUT."""
    if model_dir is not None and bundle_ref is not None:
        msg = "give --model DIR or --bundle VERSION, not both"
        raise click.UsageError(msg)
    with stage_progress(err) as stages:
        if bundle_ref is not None:
            with stages.stage(f"load bundle {bundle_ref} from Redis"):
                version, bundle = open_store(settings).load(bundle_ref)
            err.print(f"using bundle {version}")
        elif model_dir is not None:
            with stages.stage(f"load model {model_dir}"):
                bundle = load_bundle(model_dir)
        else:
            err.print(
                f"no --model or --bundle: training on {input_path} first (defaults of `xsell train retail`)"
            )
            result = train_retail(
                input_path,
                schema_from(schema_path),
                TrainParams(missing=missing),
                encoding=encoding,
                stages=stages,
            )
            bundle, data = result.bundle, result.data
        # Score with the policy the model was trained with, recorded in the bundle.
        unknown: UnknownPolicy = "code" if bundle.unknown_policy == "code" else "stop"
        data = load_retail(
            input_path,
            bundle.schema,
            encoding=encoding,
            unknown=unknown,
            missing=missing,
            stages=stages,
        )
    report = data.report
    err.print(
        f"{report.rows_read:,} rows read, {report.rows_kept:,} scored, "
        f"{report.rows_with_missing:,} with missing values ({report.missing_policy}"
        f"{': not scored' if report.missing_policy == 'drop' and report.rows_with_missing else ''})"
    )
    for u in report.unknown:
        err.print(
            f"[yellow]unseen value[/] {u.column} = {u.value!r}: {u.count:,} row(s), "
            "coded as 'unknown'"
        )
    return bundle, data


@click.command("cross-sell")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@model_option
@bundle_option
@missing_option
@top_k_option
@with_input_options
@click.pass_obj
def cross_sell_cmd(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    missing: str,
    top_k: int,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """For each customer in INPUT, the products to offer and the rule that explains each.

    OUTPUT columns: 客户编号,segment,rank,product,score,confidence,lift,support,rule,fallback.
    A customer no rule matches gets the segment's most held products (fallback=true).
    """
    bundle, data = _bundle_for(
        settings,
        input_path,
        model_dir,
        bundle_ref,
        schema_path,
        encoding,
        cast(MissingPolicy, missing),
    )
    offers = cross_sell(bundle, data, top_k=top_k)
    if bundle.value_model is not None:  # the customer's value, as the stream's alerts carry it
        values = pd.Series(values_of(bundle.value_model, data), index=data.ids)
        values = values[~values.index.duplicated()]  # a repeated id: its first row's value
        offers["value"] = offers[bundle.schema.id_column].map(values).to_numpy()
    write_csv(offers, output_path)
    customers = offers[bundle.schema.id_column].nunique()
    fallback = int(offers.loc[offers["rank"] == 1, "fallback"].sum())
    out.print(
        f"wrote {len(offers):,} offers for {customers:,} customers to {output_path} ({fallback:,} by fallback)"
    )


@click.command("product-mining")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@model_option
@bundle_option
@missing_option
@top_k_option
@click.option(
    "--per-product", type=click.IntRange(min=1), help="Keep only the best N customers per product."
)
@with_input_options
@click.pass_obj
def product_mining_cmd(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    missing: str,
    top_k: int,
    per_product: int | None,
    schema_path: Path | None,
    encoding: str | None,
) -> None:
    """For each product, the customers in INPUT to target, best first.

    OUTPUT columns: product,rank,客户编号,segment,score,rule.
    """
    bundle, data = _bundle_for(
        settings,
        input_path,
        model_dir,
        bundle_ref,
        schema_path,
        encoding,
        cast(MissingPolicy, missing),
    )
    targets = product_mining(bundle, cross_sell(bundle, data, top_k=top_k), per_product=per_product)
    write_csv(targets, output_path)
    table = Table(title="targets per product", title_justify="left")
    table.add_column("product")
    table.add_column("customers", justify="right")
    for product, count in targets["product"].value_counts(sort=False).items():
        table.add_row(str(product), f"{count:,}")
    out.print(table)
    out.print(f"wrote {len(targets):,} rows to {output_path}")


@click.command("mine")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@out_option("a directory for rules.csv (and rules_pruned.csv).", directory=True)
@min_support_option(None)
@min_confidence_option(None)
@min_lift_option(0.0)
@prune_option
@encoding_option()
def mine_cmd(
    input_path: Path,
    out_dir: Path,
    min_support: float,
    min_confidence: float,
    min_lift: float,
    prune: bool,
    encoding: str | None,
) -> None:
    """Association rules from any 0/1 (or t/f) holdings table with a header row.

    Every column holding only 0/1, t/f, true/false or y/n is an item; others (ids,
    names) are ignored. Writes OUT/rules.csv with mlxtend's measures.
    """
    table = read_item_table(input_path, encoding=encoding)
    items = tuple(str(c) for c in table.columns)
    thresholds = {
        "min_support": min_support,
        "min_confidence": min_confidence,
        "min_lift": min_lift,
    }
    if len(items) <= MAX_BITMASK_ITEMS:
        rules = mine_masks(masks_from_table(table), len(items), **thresholds)
    else:
        rules = mine_table_mlxtend(table, **thresholds)
    pruned: list[Rule] = []
    if prune:
        rules, pruned = prune_redundant(rules)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = list(RULE_COLUMNS[1:])
    write_csv(pd.DataFrame(rule_rows(None, rules, items), columns=header), out_dir / "rules.csv")
    if prune:
        write_csv(
            pd.DataFrame(rule_rows(None, pruned, items), columns=header),
            out_dir / "rules_pruned.csv",
        )
    out.print(
        f"{len(table):,} rows, {len(items)} items ({', '.join(items)}): {len(rules)} rules"
        + (f", {len(pruned)} pruned" if prune else "")
    )
    out.print(f"wrote {out_dir / 'rules.csv'}")


COMMANDS = (generate, train, cross_sell_cmd, product_mining_cmd, mine_cmd)
