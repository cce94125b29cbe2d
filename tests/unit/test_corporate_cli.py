"""The corporate commands end to end through `xsell`'s entry point: files in, files out,
clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.local_store import load_model
from tests.cli import run_cli as _run
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.bundle_commands import attach_models
from xsell.cli import main

FAST = ["--folds", "3", "--trees", "15", "--iterations", "30"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corporate-cli")


@pytest.fixture(scope="module")
def churn_run(workdir: Path) -> tuple[Path, Path]:
    """A generated churn file and the directory `xsell train churn` wrote for it.

    Module-scoped, so it calls the entry point directly (capsys is per test); `main`
    returns on success and exits non-zero on failure, which fails the fixture.
    """
    data, run = workdir / "c.del", workdir / "run-c"
    main(["generate", "corporate", "-n", "2000", "--out", str(data), "--seed", "3"])
    main(["train", "churn", str(data), "--out", str(run), *FAST])
    return data, run


def test_train_churn_writes_model_metrics_and_a_standalone_report(
    churn_run: tuple[Path, Path],
) -> None:
    _, run = churn_run
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["comparison"]) == {
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
    }
    assert metrics["holdout"]["roc_auc"] > 0.8
    for name in ("precision", "recall", "f1", "roc_auc", "pr_auc", "confusion_matrix"):
        assert name in metrics["holdout"]
    page = (run / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 3
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched
    assert "PR-AUC" in page
    assert "Permutation importance" in page
    assert load_model(run, target="churn").kind == metrics["chosen"]


def test_churn_with_a_model_scores_a_file_without_label_columns_and_does_not_train(
    churn_run: tuple[Path, Path], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = churn_run
    frame = pd.read_csv(data, header=None, dtype=str, keep_default_na=False)
    unlabelled = workdir / "unlabelled.csv"
    frame.iloc[:, :11].to_csv(
        unlabelled,
        index=False,
        header=[
            "客户编号",
            "行业",
            "成立年限",
            "注册资本",
            "员工人数",
            "存款月日均",
            "贷款余额",
            "产品持有数",
            "近一年交易天数",
            "开户日期",
            "最近交易日期",
        ],
    )
    code, output = _run(
        ["churn", str(unlabelled), str(workdir / "out.csv"), "--model", str(run)], capsys
    )
    assert code == 0, output
    assert "training on" not in output
    table = pd.read_csv(workdir / "out.csv", dtype={"客户编号": str})
    assert list(table.columns) == ["客户编号", "churn_probability", "predicted"]
    assert (table["predicted"] == 1).all()
    assert table["churn_probability"].is_monotonic_decreasing
    assert (table["churn_probability"] >= load_model(run, target="churn").threshold).all()


def test_churn_without_a_model_trains_on_the_input_first(
    churn_run: tuple[Path, Path], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = churn_run
    code, output = _run(["churn", str(data), str(workdir / "trained.csv")], capsys)
    assert code == 0, output
    assert "training on the input first" in output
    assert (workdir / "trained.csv").is_file()


def test_potential_end_to_end_keeps_exactly_the_region(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two, run = workdir / "p.del", workdir / "r.csv", workdir / "run-p"
    code, output = _run(
        ["generate", "potential", "-n", "1500", "--out", str(one), "--related", str(two)], capsys
    )
    assert code == 0, output
    code, output = _run(
        ["train", "potential", str(one), str(two), "--out", str(run), *FAST], capsys
    )
    assert code == 0, output
    assert "hold-out" in output
    out_all, out_gd = workdir / "p-all.csv", workdir / "p-gd.csv"
    assert (
        _run(
            ["potential", str(one), str(two), str(out_all), "--model", str(run), "--region", ""],
            capsys,
        )[0]
        == 0
    )
    code, output = _run(["potential", str(one), str(two), str(out_gd), "--model", str(run)], capsys)
    assert code == 0, output
    everyone = pd.read_csv(out_all, dtype={"客户编号": str})
    guangdong = pd.read_csv(out_gd, dtype={"客户编号": str})
    assert list(guangdong.columns) == ["客户编号", "potential_probability", "注册地址", "经营地址"]
    in_region = everyone["注册地址"].str.contains("广东") | everyone["经营地址"].str.contains(
        "广东"
    )
    assert set(guangdong["客户编号"]) == set(everyone.loc[in_region, "客户编号"])
    assert 0 < len(guangdong) < len(everyone)


def _churn_csv(path: Path, source: Path, edit: str) -> Path:
    names = [
        "客户编号", "行业", "成立年限", "注册资本", "员工人数", "存款月日均", "贷款余额",
        "产品持有数", "近一年交易天数", "开户日期", "最近交易日期", "金融资产月日均",
        "近三个月金融资产月日均",
    ]  # fmt: skip
    frame = pd.read_csv(source, header=None, names=names, dtype={"客户编号": str})
    if edit == "no-label":
        frame = frame.drop(columns=["近三个月金融资产月日均"])
    elif edit == "no-positive":
        frame["金融资产月日均"] = frame["近三个月金融资产月日均"]
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-label", "missing label column(s) ['近三个月金融资产月日均']"),
        ("no-positive", "no positive labels at all"),
        ("related-without-id", "no 客户编号 column; the related data"),
        ("wrong-model", "a churn model, but a potential model is needed"),
        ("no-model", "no trained model (model.json)"),
    ],
)
def test_bad_corporate_input_exits_non_zero_with_a_clear_message_and_no_traceback(
    churn_run: tuple[Path, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    expected: str,
) -> None:
    data, run = churn_run
    target = workdir / f"bad-{case}.csv"
    if case in ("no-label", "no-positive"):
        args = [
            "train",
            "churn",
            str(_churn_csv(target, data, case)),
            "--out",
            str(workdir / "x"),
            *FAST,
        ]
    else:
        profiles = workdir / "good-p.csv"
        _run(
            [
                "generate",
                "potential",
                "-n",
                "300",
                "--out",
                str(profiles),
                "--related",
                str(target),
            ],
            capsys,
        )
        if case == "related-without-id":
            related = pd.read_csv(target, dtype=str).rename(columns={"客户编号": "客户号"})
            related.to_csv(target, index=False)
        model = {"wrong-model": run, "no-model": workdir}.get(case)
        args = ["potential", str(profiles), str(target), str(workdir / "y.csv")]
        if model is not None:
            args += ["--model", str(model)]
    code, output = _run(args, capsys)
    assert code != 0
    assert expected in " ".join(output.split()), output
    assert "Traceback" not in output


def test_publish_attaches_the_churn_model_to_the_bundle(
    churn_run: tuple[Path, Path], workdir: Path
) -> None:
    _, run = churn_run
    path = workdir / "retail.del"
    write_retail(generate_retail(300, seed=4, dirty_share=0.0), path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=2)).bundle
    attached = attach_models(bundle, run, None)
    assert attached.churn_model == load_model(run, target="churn")
    assert attached.potential_model is None
    assert attached.segments == bundle.segments
