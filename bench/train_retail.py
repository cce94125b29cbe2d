"""Retail training time per stage: ours against the seed-001 way, measured in this run.

Generates N synthetic customers (training/generate.py) to a DB2 `.del` file in a temp
directory (generation is timed on its own, outside both pipelines), then on that file:

1. ours: `train_retail` (pyarrow parse, vectorized encode, KMeans fitted on a sample,
   exact bitmask mining), then the write stage (`write_training_outputs` + `write_report` + `save_run_bundle`).
2. the seed-001 way, the bank's original batch script written plainly with pandas, sklearn
   and mlxtend: `pd.read_csv`, `dropna()`, category codes by `values.index` per value,
   products from balances, StandardScaler + KMeans on every row, then per cluster
   mlxtend `apriori` + `association_rules` filtered by lift, rules written to CSV.
3. exactness: mlxtend's apriori + association_rules (`mine_table_mlxtend`) on OUR segments,
   compared rule by rule (`==`, bit-identical floats) with the rules in our bundle.

Ratios are seed / ours from the same run, so a noisy shared machine hits both sides.

Run: .venv/bin/python bench/train_retail.py   (1,000,000 customers; a few minutes)
     .venv/bin/python bench/train_retail.py --customers 100000 --seed-n-init 1
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.rules import Rule
from training.generate import generate_retail, write_retail
from training.mining import masks_from_table, mine_table_mlxtend
from training.outputs import save_run_bundle, write_training_outputs
from training.report import write_report
from training.retail import TrainParams, TrainResult, train_retail
from training.stages import Stages

# As training/mining.py imports mlxtend: its import would turn every DeprecationWarning on.
with warnings.catch_warnings():
    from mlxtend.frequent_patterns import apriori, association_rules

STAGES = ("parse", "validate/encode", "segment", "mine", "write")

PRODUCTS = RETAIL_SCHEMA.products.names
PRODUCT_BALANCES = {p.name: p.balances for p in RETAIL_SCHEMA.products.products}


def _stages(progress: Progress, side: str) -> Stages:
    """Stages that show `side: stage` as a progress line while it runs."""
    tasks: dict[str, TaskID] = {}

    def start(name: str) -> None:
        tasks[name] = progress.add_task(f"{side}: {name}", total=1)

    def end(name: str, _seconds: float) -> None:
        progress.update(tasks[name], completed=1)

    return Stages(on_start=start, on_end=end)


def run_ours(path: Path, out: Path, params: TrainParams, stages: Stages) -> TrainResult:
    result = train_retail(path, RETAIL_SCHEMA, params, stages=stages)
    with stages.stage("write"):
        write_training_outputs(
            out, result.bundle, result.data.ids, result.segmentation.labels, result.values
        )
        write_report(out / "report.html", result.bundle, stages.seconds)
        save_run_bundle(out, result.bundle)
    return result


def run_seed_way(
    path: Path, out: Path, params: TrainParams, n_init: int, stages: Stages
) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """The seed-001 batch script, as plainly as a 2023 pandas + sklearn + mlxtend script.

    Returns the encoded features, the product table (for the sanity check against ours)
    and the number of rules per cluster.
    """
    names = [f.name for f in RETAIL_SCHEMA.segment_fields]
    with stages.stage("parse"):
        df = pd.read_csv(path, header=None, names=list(RETAIL_SCHEMA.columns))
    with stages.stage("validate/encode"):
        df = df.dropna()
        for spec in RETAIL_SCHEMA.segment_fields:
            if spec.kind != "category":
                continue
            column = df[spec.name]
            if pd.api.types.is_numeric_dtype(column):  # 0/1 flags come back as numbers
                column = column.astype("int64").astype(str)
            # the seed: "the index of the value in the field's list"
            df[spec.name] = column.map(list(spec.values).index)
        products = pd.DataFrame(
            {
                product: (df[list(columns)] != 0).any(axis=1)
                for product, columns in PRODUCT_BALANCES.items()
            }
        )
    with stages.stage("segment"):
        scaled = StandardScaler().fit_transform(df[names])
        kmeans = KMeans(n_clusters=params.segments, random_state=params.seed, n_init=n_init)
        labels = kmeans.fit_predict(scaled)
    with stages.stage("mine"):
        found = []
        for cluster in range(kmeans.n_clusters):
            cluster_df = products[labels == cluster]
            frequent = apriori(cluster_df, min_support=params.min_support, use_colnames=True)
            rules = association_rules(
                frequent,
                num_itemsets=len(cluster_df),
                metric="confidence",
                min_threshold=params.min_confidence,
            )
            rules = rules[rules["lift"] >= params.min_lift]
            rules.insert(0, "segment", cluster)
            found.append(rules)
    with stages.stage("write"):
        out.mkdir(parents=True, exist_ok=True)
        pd.concat(found, ignore_index=True).to_csv(out / "rules.csv", index=False)
    return df[names], products, [len(r) for r in found]


def check_exact(
    result: TrainResult, params: TrainParams
) -> tuple[bool, int, int, list[int], float]:
    """mlxtend on our segments vs our bundle's rules: (identical, ours, mlxtend, bad, seconds)."""
    masks = result.data.masks
    labels = result.segmentation.labels
    bits = np.arange(len(PRODUCTS), dtype=np.int64)
    seconds = 0.0
    ours_count = mlxtend_count = 0
    differing = []
    for segment in result.bundle.segments:
        members = masks[labels == segment.segment]
        table = pd.DataFrame(((members[:, None] >> bits) & 1).astype(bool), columns=PRODUCTS)
        started = time.perf_counter()
        reference = mine_table_mlxtend(
            table,
            min_support=params.min_support,
            min_confidence=params.min_confidence,
            min_lift=params.min_lift,
        )
        seconds += time.perf_counter() - started
        ours: list[Rule] = list(segment.rules)
        ours_count += len(ours)
        mlxtend_count += len(reference)
        if ours != reference:
            differing.append(segment.segment)
    return not differing, ours_count, mlxtend_count, differing, seconds


def same_encoding(
    result: TrainResult, features: pd.DataFrame, products: pd.DataFrame
) -> tuple[bool, bool]:
    """The seed way's encoded fields and holdings equal ours (same rows, same codes)."""
    ours_masks: npt.NDArray[np.int64] = result.data.masks
    equal_features = features.shape == result.data.features.shape and bool(
        np.array_equal(features.to_numpy(dtype=np.float64), result.data.features)
    )
    equal_masks = len(products) == len(ours_masks) and bool(
        np.array_equal(masks_from_table(products), ours_masks)
    )
    return equal_features, equal_masks


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.2f}"


def _ratio(numerator: float, denominator: float) -> str:
    ratio = numerator / denominator
    return f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2f}x"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--segments", type=int, default=4, help="k, for both pipelines")
    parser.add_argument("--min-support", type=float, default=0.02)
    parser.add_argument("--min-confidence", type=float, default=0.3)
    parser.add_argument("--min-lift", type=float, default=1.1)
    parser.add_argument("--train-seed", type=int, default=7, help="KMeans random_state")
    parser.add_argument(
        "--seed-n-init",
        type=int,
        default=10,
        help="KMeans n_init of the seed way (10 = sklearn's default in 2023)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    return parser.parse_args()


def _stage_table(ours_s: dict[str, float], seed_s: dict[str, float]) -> Table:
    table = Table(
        title="retail training, seconds per stage (one run each, same file)",
        title_justify="left",
        caption=(
            "write: ours = assignments.csv + rules.csv + rules.json + model/bundle.json + "
            "report.html; seed way = rules.csv only"
        ),
        caption_justify="left",
    )
    for column in ("stage", "ours (s)", "seed-001 way (s)", "ratio (seed/ours)"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in STAGES:
        table.add_row(
            stage, _s(ours_s[stage]), _s(seed_s[stage]), _ratio(seed_s[stage], ours_s[stage])
        )
    ours_total = sum(ours_s[stage] for stage in STAGES)
    seed_total = sum(seed_s[stage] for stage in STAGES)
    table.add_section()
    table.add_row(
        "[b]total[/]", _s(ours_total), _s(seed_total), f"[b]{_ratio(seed_total, ours_total)}[/]"
    )
    return table


def main() -> None:
    args = _arguments()
    console = Console()
    params = TrainParams(
        segments=args.segments,
        min_support=args.min_support,
        min_confidence=args.min_confidence,
        min_lift=args.min_lift,
        seed=args.train_seed,
    )
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-train-"))
    path = work / "customers.del"

    with Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"generate {args.customers:,} customers", total=1)
        started = time.perf_counter()
        frame = generate_retail(args.customers, seed=args.seed)
        write_retail(frame, path, "del")
        generate_s = time.perf_counter() - started
        progress.update(task, completed=1)
        del frame
        gc.collect()

        ours_stages = _stages(progress, "ours")
        result = run_ours(path, work / "ours", params, ours_stages)
        gc.collect()

        task = progress.add_task("mlxtend on our segments (exactness)", total=1)
        identical, ours_rules, mlxtend_rules, differing, mlxtend_s = check_exact(result, params)
        progress.update(task, completed=1)

        seed_stages = _stages(progress, "seed-001 way")
        features, products, seed_rules = run_seed_way(
            path, work / "seed", params, args.seed_n_init, seed_stages
        )
        task = progress.add_task("compare the seed way's encoding with ours", total=1)
        equal_features, equal_masks = same_encoding(result, features, products)
        progress.update(task, completed=1)

    report = result.data.report
    console.print(
        f"{args.customers:,} customers generated to {path.name} "
        f"({path.stat().st_size / 2**20:,.0f} MiB) in {generate_s:.2f} s (not timed below); "
        f"{report.rows_kept:,} rows kept of {report.rows_read:,}"
    )
    console.print(
        f"k={args.segments}, min_support={args.min_support}, "
        f"min_confidence={args.min_confidence}, min_lift={args.min_lift}, "
        f"KMeans seed={args.train_seed}; ours fits on a {result.segmentation.fit_rows:,}-row sample "
        f"(n_init=5), the seed way on all rows (n_init={args.seed_n_init})"
    )
    console.print(_stage_table(ours_stages.seconds, seed_stages.seconds))
    console.print(
        f"rules identical to mlxtend: {'yes' if identical else 'no'} "
        f"(ours {ours_rules} rules, mlxtend {mlxtend_rules} rules, "
        f"over our {len(result.bundle.segments)} segments"
        + (f"; differing segments {differing})" if differing else ")")
    )
    ours_mine = ours_stages.seconds["mine"]
    console.print(
        f"mining on our segments: mlxtend {_s(mlxtend_s)} s, ours {_s(ours_mine)} s "
        f"-> mlxtend / ours = {_ratio(mlxtend_s, ours_mine)}"
    )
    console.print(
        f"seed way encoding equals ours: fields {'yes' if equal_features else 'no'}, "
        f"holdings {'yes' if equal_masks else 'no'}; seed way rules per cluster {seed_rules}, "
        f"ours per segment {[len(s.rules) for s in result.bundle.segments]}"
    )
    if args.keep:
        console.print(f"outputs kept in {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
