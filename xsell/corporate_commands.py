"""Corporate commands (seed 001, 对公): generate corporate|potential, train churn|potential,
churn, potential."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import cast

import click
from rich.table import Table

from rules_store.bundle.schema import UnknownPolicy
from rules_store.domain.scoring import ScoringModel
from rules_store.errors import XsellError
from rules_store.settings import Settings
from rules_store.store.files import atomic_path
from rules_store.store.local_store import MODEL_FILE, load_model, save_model
from training.corporate import CorporateTraining, churn_table, potential_table, train_corporate
from training.corporate_data import (
    CHURN,
    CHURN_SCHEMA,
    POTENTIAL,
    POTENTIAL_SCHEMA,
    RELATED_SCHEMA,
    CorporateData,
    Task,
    load_churn,
    load_potential,
    unseen_values,
)
from training.corporate_generate import generate_churn, generate_potential
from training.corporate_report import write_corporate_report
from training.generate import write_table
from training.loading import file_format
from training.model_selection import Scores, SelectionParams
from training.outputs import write_csv
from training.retail import file_fingerprint
from training.stages import Stages
from xsell.bundle_commands import open_store
from xsell.console import err, out
from xsell.options import (
    Decorator,
    apply_options,
    bundle_option,
    customers_option,
    dirty_share_option,
    encoding_option,
    model_option,
    model_selection_options,
    out_option,
    seed_option,
    unknown_category_option,
)
from xsell.progress import stage_progress

log = logging.getLogger(__name__)
SHORT_NAMES = {
    "logistic_regression": "logistic",
    "random_forest": "forest",
    "hist_gradient_boosting": "hist GB",
}
_generate_options: list[Decorator] = [
    customers_option(),
    seed_option(),
    encoding_option(default="utf-8"),
    dirty_share_option(0.002),
]


@click.command("corporate")
@apply_options(_generate_options)
@out_option("the churn file (.del, .csv or .parquet; 13 columns).")
def generate_corporate_cmd(
    customers: int, seed: int, encoding: str, dirty_share: float, out_path: Path
) -> None:
    """Synthetic corporate customers for the churn model, with a planted churn signal.

    Churn risk rises with few trading days (近一年交易天数), few products (产品持有数),
    the 批发和零售业 and 住宿和餐饮业 sectors, and falls with a loan; the other fields are
    noise. See training/corporate_generate.py for the formula.
    """
    fmt = file_format(out_path)
    with stage_progress(err) as stages:
        with stages.stage(f"generate {customers:,} corporate customers"):
            frame = generate_churn(customers, seed=seed, dirty_share=dirty_share)
        with stages.stage(f"write {out_path}"):
            write_table(frame, CHURN_SCHEMA.columns, out_path, fmt, encoding=encoding)
    _say(
        f"wrote {len(frame):,} customers to {out_path} ({fmt}, {encoding}); "
        f"{int(frame['planted_churn'].sum()):,} churn"
    )


def _say(text: str) -> None:
    out.print(text, highlight=False)


def _say_unseen(model: ScoringModel, data: CorporateData) -> None:
    """Count the category values the model never saw (each scored as all zeros)."""
    for u in unseen_values(model.inputs, data):
        _say(
            f"unseen value {u.column} = {u.value!r}: {u.count:,} row(s) (first at line(s) "
            f"{', '.join(map(str, u.first_lines))}), scored with all-zero {u.column} columns"
        )


@click.command("potential")
@apply_options(_generate_options)
@out_option("file 1, profiles and monthly transactions (10 columns).")
@click.option(
    "--related",
    "related_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="File 2 to write: 客户编号, 注册地址, 经营地址.",
)
def generate_potential_cmd(
    customers: int, seed: int, encoding: str, dirty_share: float, out_path: Path, related_path: Path
) -> None:
    """Synthetic corporate customers for the potential-customer model, and their addresses.

    Potential rises with registered capital (注册资本), products held (产品持有数) and the
    制造业 and 批发和零售业 sectors, and falls for 农林牧渔业. About 30% of addresses are in
    广东省; 2% of customers have no row in the related file.
    """
    with stage_progress(err) as stages:
        with stages.stage(f"generate {customers:,} corporate customers"):
            frame, addresses = generate_potential(customers, seed=seed, dirty_share=dirty_share)
        with stages.stage(f"write {out_path} and {related_path}"):
            write_table(
                frame, POTENTIAL_SCHEMA.columns, out_path, file_format(out_path), encoding=encoding
            )
            write_table(
                addresses,
                RELATED_SCHEMA.columns,
                related_path,
                file_format(related_path),
                encoding=encoding,
            )
    _say(
        f"wrote {len(frame):,} customers to {out_path} "
        f"({int(frame['planted_potential'].sum()):,} potential) and {len(addresses):,} "
        f"addresses to {related_path}"
    )


_train_options: list[Decorator] = [
    out_option("a directory for model.json, metrics.json and report.html.", directory=True),
    *model_selection_options,
    unknown_category_option(
        "No field of the seed layout lists its values: 行业's are learned from the input, "
        "and a value unseen in training is scored as all zeros and counted."
    ),
    encoding_option(),
]


def _params(
    folds: int,
    target_recall: float | None,
    test_size: float,
    seed: int,
    trees: int,
    iterations: int,
    threads: int,
) -> SelectionParams:
    return SelectionParams(
        threads=threads,
        folds=folds,
        test_size=test_size,
        target_recall=target_recall,
        seed=seed,
        forest_trees=trees,
        boosting_iterations=iterations,
    )


def _comparison_table(run: CorporateTraining) -> Table:
    selection = run.selection
    table = Table(
        title=f"{run.model.target}: candidates ({selection.sizes['train']:,} rows, out-of-fold) "
        f"and the chosen one on the hold-out ({selection.sizes['test']:,} rows)",
        title_justify="left",
    )
    for column in ("model", "precision", "recall", "F1", "ROC-AUC", "PR-AUC", "threshold"):
        table.add_column(
            column, justify="left" if column == "model" else "right", no_wrap=column == "model"
        )

    def row(label: str, s: Scores, style: str | None = None) -> None:
        table.add_row(
            label,
            *(f"{v:.3f}" for v in (s.precision, s.recall, s.f1, s.roc_auc, s.pr_auc, s.threshold)),
            style=style,
        )

    for name, s in selection.comparison.items():
        row(SHORT_NAMES[name] + (" ✓" if name == selection.chosen else ""), s)
    table.add_section()
    row(f"{SHORT_NAMES[selection.chosen]}, hold-out", selection.test, "bold")
    return table


def _train(
    task: Task,
    data: CorporateData,
    params: SelectionParams,
    fingerprint: str,
    unknown: str,
    stages: Stages,
) -> CorporateTraining:
    report = data.report
    err.print(
        f"{report.rows_read:,} rows read, {report.rows_kept:,} kept, "
        f"{report.rows_with_missing:,} with missing values dropped"
        + (f", {report.without_related:,} without related data" if report.without_related else "")
        + f"; {report.positives or 0:,} positive ({task.label_text})",
        highlight=False,
    )
    run = train_corporate(
        task, data, params, fingerprint=fingerprint, unknown=unknown, stages=stages
    )
    log.info(
        "trained %s model",
        task.name,
        extra={
            "model": run.selection.chosen,
            "fingerprint": fingerprint,
            "rows": report.rows_kept,
            "holdout_roc_auc": round(run.selection.test.roc_auc, 4),
        },
    )
    return run


def _write_run(out_dir: Path, run: CorporateTraining, stages: Stages) -> list[Path]:
    """Metrics, report, then the model: a run that fails midway leaves no model.json
    (a previous run's is removed first, as it would not match the other files)."""
    with stages.stage("write model, metrics and report"):
        (out_dir / MODEL_FILE).unlink(missing_ok=True)
        metrics, report = out_dir / "metrics.json", out_dir / "report.html"
        with atomic_path(metrics) as tmp:
            tmp.write_text(
                json.dumps(run.metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        write_corporate_report(report, run, stages.seconds)
        return [save_model(out_dir, run.model), metrics, report]


def _finish(run: CorporateTraining, files: list[Path]) -> None:
    out.print(_comparison_table(run))
    _say(f"threshold {run.model.threshold:.4f} ({run.model.threshold_rule})")
    for warning in run.selection.leaks:
        out.print(f"[yellow]leakage warning:[/] {warning}", highlight=False)
    for path in files:
        _say(f"wrote {path}")


@click.command("churn")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@apply_options(_train_options)
def train_churn_cmd(
    input_path: Path,
    out_dir: Path,
    folds: int,
    target_recall: float | None,
    test_size: float,
    seed: int,
    trees: int,
    iterations: int,
    threads: int,
    unknown: str,
    encoding: str | None,
) -> None:
    """Train the corporate churn-warning model (seed 001 customer_losing) on INPUT.

    \b
    INPUT: 客户编号,行业,成立年限,注册资本,员工人数,存款月日均,贷款余额,产品持有数,
           近一年交易天数,开户日期,最近交易日期,金融资产月日均,近三个月金融资产月日均
    Label: 金融资产月日均 fell more than 50% against 近三个月金融资产月日均; the two label
    columns and every 日期 column are dropped, rows with an empty field are dropped.

    Compares logistic regression, random forest and gradient boosting by stratified
    cross-validation, keeps the best PR-AUC, picks the threshold (best F1 or
    --target-recall) and measures it on a hold-out. Writes OUT/model.json (for --model
    and `xsell publish --churn-model`), OUT/metrics.json and OUT/report.html.
    """
    params = _params(folds, target_recall, test_size, seed, trees, iterations, threads)
    with stage_progress(err) as stages:
        with stages.stage(f"load {input_path}"):
            data = load_churn(input_path, encoding=encoding, unknown=cast(UnknownPolicy, unknown))
        run = _train(CHURN, data, params, file_fingerprint(input_path), unknown, stages)
        files = _write_run(out_dir, run, stages)
    _finish(run, files)


@click.command("potential")
@click.argument("input_path", metavar="INPUT1", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("related_path", metavar="INPUT2", type=click.Path(path_type=Path, dir_okay=False))
@apply_options(_train_options)
def train_potential_cmd(
    input_path: Path,
    related_path: Path,
    out_dir: Path,
    folds: int,
    target_recall: float | None,
    test_size: float,
    seed: int,
    trees: int,
    iterations: int,
    threads: int,
    unknown: str,
    encoding: str | None,
) -> None:
    """Train the corporate potential-customer model (seed 001 customer_potential).

    \b
    INPUT1: 客户编号,行业,成立年限,注册资本,员工人数,存款月日均,贷款余额,产品持有数,
            月均交易笔数,月均交易金额
    INPUT2: 客户编号,注册地址,经营地址 (joined on 客户编号)
    Label: 月均交易笔数 > 3 or 月均交易金额 > 3,000,000; both columns are dropped.

    Same model selection as `xsell train churn`; trains on every joined customer (the
    region filter applies to `xsell potential`'s output). Writes OUT/model.json,
    OUT/metrics.json and OUT/report.html.
    """
    params = _params(folds, target_recall, test_size, seed, trees, iterations, threads)
    with stage_progress(err) as stages:
        with stages.stage(f"load and join {input_path} and {related_path}"):
            data = load_potential(
                input_path, related_path, encoding=encoding, unknown=cast(UnknownPolicy, unknown)
            )
        fingerprint = _joint_fingerprint(input_path, related_path)
        run = _train(POTENTIAL, data, params, fingerprint, unknown, stages)
        files = _write_run(out_dir, run, stages)
    _finish(run, files)


def _joint_fingerprint(*paths: Path) -> str:
    digest = hashlib.sha256("\n".join(file_fingerprint(p) for p in paths).encode())
    return f"sha256:{digest.hexdigest()}"


class NoCorporateModelError(XsellError, LookupError):
    """A published bundle carries no model of the requested kind."""


def _model_for(
    settings: Settings,
    task: Task,
    model_dir: Path | None,
    bundle_ref: str | None,
    train_data: Callable[[], CorporateData],
    fingerprint: Callable[[], str],
    stages: Stages,
) -> ScoringModel:
    """--model DIR, --bundle VERSION, or trained on the input with the defaults."""
    if model_dir is not None and bundle_ref is not None:
        msg = "give --model DIR or --bundle VERSION, not both"
        raise click.UsageError(msg)
    if model_dir is not None:
        with stages.stage(f"load model {model_dir}"):
            return load_model(model_dir, target=task.name)
    if bundle_ref is not None:
        with stages.stage(f"load bundle {bundle_ref} from Redis"):
            version, bundle = open_store(settings).load(bundle_ref)
        model = bundle.churn_model if task is CHURN else bundle.potential_model
        if model is None:
            msg = (
                f"bundle {version} has no {task.name} model; attach one with `xsell publish DIR "
                f"--{task.name}-model RUN` or pass --model RUN"
            )
            raise NoCorporateModelError(msg)
        err.print(f"using the {task.name} model of bundle {version}")
        return model
    err.print(
        f"no --model or --bundle: training on the input first (defaults of `xsell train {task.name}`)"
    )
    with stages.stage("load labelled input"):
        data = train_data()
    run = _train(task, data, SelectionParams(), fingerprint(), "stop", stages)
    out.print(_comparison_table(run))
    return run.model


_score_options: list[Decorator] = [model_option, bundle_option, encoding_option()]


@click.command("churn")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@apply_options(_score_options)
@click.option(
    "--all", "everyone", is_flag=True, help="Write every scored customer, not only churners."
)
@click.pass_obj
def churn_cmd(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    encoding: str | None,
    everyone: bool,
) -> None:
    """Corporate customers in INPUT predicted to churn, most likely first.

    OUTPUT columns: 客户编号,churn_probability,predicted. With --model DIR (or --bundle)
    INPUT needs no label columns; without, the model is trained on INPUT first, as
    seed 001's customer_losing does.
    """
    with stage_progress(err) as stages:
        model = _model_for(
            settings,
            CHURN,
            model_dir,
            bundle_ref,
            lambda: load_churn(input_path, encoding=encoding),
            lambda: file_fingerprint(input_path),
            stages,
        )
        with stages.stage(f"score {input_path}"):
            data = load_churn(
                input_path,
                encoding=encoding,
                unknown=cast(UnknownPolicy, model.unknown_policy),
                need_labels=False,
            )
            table = churn_table(model, data, everyone=everyone)
        write_csv(table, output_path)
    _say_unseen(model, data)
    churners = int(table["predicted"].sum())
    _say(
        f"{data.report.rows_kept:,} customers scored ({data.report.rows_with_missing:,} with "
        f"missing values not scored); {churners:,} predicted to churn at threshold "
        f"{model.threshold:.4f}; wrote {len(table):,} rows to {output_path}"
    )


@click.command("potential")
@click.argument("input_path", metavar="INPUT1", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("related_path", metavar="INPUT2", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@apply_options(_score_options)
@click.option(
    "--region",
    default="广东",
    show_default=True,
    help="Keep customers whose 注册地址 or 经营地址 contains this text ('' keeps everyone).",
)
@click.pass_obj
def potential_cmd(
    settings: Settings,
    input_path: Path,
    related_path: Path,
    output_path: Path,
    model_dir: Path | None,
    bundle_ref: str | None,
    encoding: str | None,
    region: str,
) -> None:
    """Predicted potential corporate customers in a region, most likely first.

    INPUT1 holds the profiles, INPUT2 the related data (客户编号,注册地址,经营地址).
    OUTPUT columns: 客户编号,potential_probability,注册地址,经营地址. Without --model or
    --bundle the model is trained on the inputs first, as seed 001's customer_potential.
    """
    with stage_progress(err) as stages:
        model = _model_for(
            settings,
            POTENTIAL,
            model_dir,
            bundle_ref,
            lambda: load_potential(input_path, related_path, encoding=encoding),
            lambda: _joint_fingerprint(input_path, related_path),
            stages,
        )
        with stages.stage(f"score {input_path}"):
            data = load_potential(
                input_path,
                related_path,
                encoding=encoding,
                unknown=cast(UnknownPolicy, model.unknown_policy),
                need_labels=False,
            )
            table = potential_table(model, data, region)
        write_csv(table, output_path)
    _say_unseen(model, data)
    where = f" with {region!r} in an address" if region else ""
    _say(
        f"{data.report.rows_kept:,} customers scored; {len(table):,} predicted potential{where} "
        f"at threshold {model.threshold:.4f}; wrote {output_path}"
    )


GENERATE_COMMANDS = (generate_corporate_cmd, generate_potential_cmd)
TRAIN_COMMANDS = (train_churn_cmd, train_potential_cmd)
COMMANDS = (churn_cmd, potential_cmd)
