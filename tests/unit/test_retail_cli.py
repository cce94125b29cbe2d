"""The retail commands end to end through `xsell`'s entry point: files in, files out, clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli as _run
from training.generate import generate_retail, write_retail


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def good(workdir: Path) -> Path:
    """200 clean customers in a `.del` file."""
    path = workdir / "good.del"
    write_retail(generate_retail(200, seed=7, dirty_share=0.0), path, "del")
    return path


def test_generate_train_cross_sell_and_product_mining(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "c.del"
    code, output = _run(
        ["generate", "retail", "-n", "3000", "--out", str(data), "--seed", "2"], capsys
    )
    assert code == 0, output
    code, output = _run(
        ["train", "retail", str(data), "--out", str(workdir / "run"), "--segments", "4", "--prune"],
        capsys,
    )
    assert code == 0, output
    for name in (
        "assignments.csv",
        "rules.csv",
        "rules.json",
        "rules_pruned.csv",
        "report.html",
        "model/bundle.json",
    ):
        assert (workdir / "run" / name).is_file(), name
    assert (workdir / "run" / "report.html").read_text(encoding="utf-8").count("<svg") >= 4
    header = (workdir / "run" / "rules.csv").read_text(encoding="utf-8").splitlines()[0]
    assert (
        header
        == "segment,antecedents,consequents,antecedent_support,consequent_support,support,confidence,lift,leverage,conviction"
    )

    code, output = _run(
        ["cross-sell", str(data), str(workdir / "cs.csv"), "--model", str(workdir / "run")], capsys
    )
    assert code == 0, output
    offers = pd.read_csv(workdir / "cs.csv", dtype={"客户编号": str})
    assert list(offers.columns) == [
        "客户编号",
        "segment",
        "rank",
        "product",
        "score",
        "confidence",
        "lift",
        "support",
        "rule",
        "fallback",
        "ranker",  # `train retail` bundles its best ranker; each offer says which and why
        "evidence",
        "value",  # the customer's value percentile, as the stream's alerts carry it
    ]
    assert offers["value"].between(0, 100).all()
    assert offers["客户编号"].nunique() > 2900

    code, output = _run(
        ["product-mining", str(data), str(workdir / "pm.csv"), "--model", str(workdir / "run")],
        capsys,
    )
    assert code == 0, output
    targets = pd.read_csv(workdir / "pm.csv", dtype={"客户编号": str})
    assert list(targets.columns) == ["product", "rank", "客户编号", "segment", "score", "rule"]
    assert len(targets) == len(offers)


def test_cross_sell_without_a_model_trains_on_the_input_first(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "small.csv"
    assert _run(["generate", "retail", "-n", "1500", "--out", str(data)], capsys)[0] == 0
    code, output = _run(["cross-sell", str(data), str(workdir / "cs2.csv")], capsys)
    assert code == 0, output
    assert "training on" in output


def test_mine_reads_any_0_1_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = workdir / "items.csv"
    rows = ["id,a,b,c"] + [
        f"{i},{int(i % 2 == 0)},{int(i % 3 == 0)},{int(i % 2 == 0 or i % 5 == 0)}"
        for i in range(200)
    ]
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, output = _run(
        [
            "mine",
            str(table),
            "--out",
            str(workdir / "mined"),
            "--min-support",
            "0.1",
            "--min-confidence",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, output
    rules = pd.read_csv(workdir / "mined" / "rules.csv")
    assert ("a", "c") in set(zip(rules["antecedents"], rules["consequents"], strict=True))
    assert (
        rules.loc[
            (rules["antecedents"] == "a") & (rules["consequents"] == "c"), "confidence"
        ].item()
        == 1.0
    )


def _bad_del(path: Path, good: Path, edit: str) -> Path:
    lines = good.read_text(encoding="utf-8").splitlines()
    if edit == "columns":
        lines[2] += ",1"
    elif edit == "number":
        fields = lines[3].split(",")
        fields[-1] = "abc"
        lines[3] = ",".join(fields)
    elif edit == "category":
        lines[4] = (
            lines[4]
            .replace('"网银"', '"微信"')
            .replace('"柜面"', '"微信"')
            .replace('"手机银行"', '"微信"')
            .replace('"ATM"', '"微信"')
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("columns", "line 3: 40 columns, expected 39"),
        ("number", "line 4, column '信用卡分期余额': 'abc' is not a number"),
        ("category", "交易渠道偏好 = '微信': 1 row(s), first at line(s) 5"),
        ("empty", "empty"),
        ("missing", "no such file"),
        ("model", "no trained model"),
        ("segments", "--segments"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message_and_no_traceback(
    workdir: Path, good: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    target = workdir / f"bad-{case}.del"
    args = [
        "train",
        "retail",
        str(target),
        "--out",
        str(workdir / f"out-{case}"),
        "--segments",
        "2",
    ]
    if case in ("columns", "number", "category"):
        _bad_del(target, good, case)
    elif case == "empty":
        target.write_bytes(b"")
    elif case == "model":
        args = ["cross-sell", str(good), str(workdir / "x.csv"), "--model", str(workdir)]
    elif case == "segments":
        args = ["train", "retail", str(good), "--out", str(workdir / "o"), "--segments", "many"]
    code, output = _run(args, capsys)
    assert code != 0
    assert expected in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "not a readable table"),
        (b'id,a\n"1,0\n', "not a readable table"),
        (b"\xff\xfe\x00\x81", "UTF-8 nor GB18030"),
    ],
)
def test_mine_refuses_bad_tables_with_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, expected: str
) -> None:
    path = workdir / "bad-items.csv"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_bytes(content)
    code, output = _run(
        [
            "mine",
            str(path),
            "--out",
            str(workdir / "m"),
            "--min-support",
            "0.1",
            "--min-confidence",
            "0.5",
        ],
        capsys,
    )
    assert code == 1
    assert expected in output


def test_an_unwritable_output_path_is_one_line_not_a_traceback(
    workdir: Path, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = workdir / "a-file"
    blocker.write_text("x", encoding="utf-8")
    code, output = _run(["cross-sell", str(good), str(blocker / "out.csv")], capsys)
    assert code == 1
    assert "error:" in output
