"""A command that fails midway leaves no output file under its final name, and no temporary.

A full disk is simulated by writers that write part of the file and then raise ENOSPC.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import training.outputs
from rules_store.store.files import atomic_path
from tests.cli import run_cli as _run
from training.generate import generate_retail, write_retail
from xsell.cli import main

FAST = ["--folds", "3", "--trees", "15", "--iterations", "30"]


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def _names(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*")}


@pytest.fixture(scope="module")
def retail_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """300 customers and the directory `xsell train retail` wrote for them."""
    workdir = tmp_path_factory.mktemp("outputs")
    data, run = workdir / "c.del", workdir / "run"
    write_retail(generate_retail(300, seed=8, dirty_share=0.0), data, "del")
    main(["train", "retail", str(data), "--out", str(run), "--segments", "2"])
    return data, run


def _write_then_fail(path: Path, text: str, error: BaseException) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        raise error


def test_a_writer_that_fails_midway_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(OSError, match="No space left"):
        _write_then_fail(out, "a,b\n1,", _disk_full())
    assert _names(tmp_path) == set()
    out.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        _write_then_fail(out, "new", KeyboardInterrupt())
    assert _names(tmp_path) == {"out.csv"}
    assert out.read_text() == "old\n"


def test_cross_sell_leaves_no_truncated_csv_when_the_disk_fills(
    retail_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, run = retail_run
    real = training.outputs.pacsv.write_csv

    def half_then_full(table: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        real(table.slice(0, len(table) // 2), path, *args, **kwargs)
        raise _disk_full()

    monkeypatch.setattr(training.outputs.pacsv, "write_csv", half_then_full)
    code, output = _run(
        ["cross-sell", str(data), str(tmp_path / "out.csv"), "--model", str(run)], capsys
    )
    assert code == 1
    assert "No space left on device" in output
    assert "Traceback" not in output
    assert _names(tmp_path) == set()


def test_generate_leaves_no_partial_file_when_the_disk_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pd.DataFrame.to_csv

    def half_then_full(frame: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> None:
        real(frame.head(len(frame) // 2), path, *args, **kwargs)
        raise _disk_full()

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    code, output = _run(
        ["generate", "retail", "-n", "200", "--out", str(tmp_path / "c.del")], capsys
    )
    assert code == 1, output
    assert _names(tmp_path) == set()


def test_a_training_run_whose_report_fails_leaves_no_bundle_for_model(
    retail_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, _ = retail_run
    out = tmp_path / "run"
    code, output = _run(
        ["train", "retail", str(data), "--out", str(out), "--segments", "2"], capsys
    )
    assert code == 0, output
    assert (out / "model" / "bundle.json").is_file()

    def fail(path: Path, *_args: Any) -> None:
        path.write_text("<html>half")  # under its final name: the report itself is not atomic here
        raise _disk_full()

    monkeypatch.setattr("xsell.retail_commands.write_report", fail)
    code, output = _run(
        ["train", "retail", str(data), "--out", str(out), "--segments", "3"], capsys
    )
    assert code == 1
    assert "No space left on device" in output
    assert not (
        out / "model" / "bundle.json"
    ).exists()  # nor the first run's, which no longer matches
    assert not [name for name in _names(out) if ".tmp-" in name]
    code, output = _run(
        ["cross-sell", str(data), str(tmp_path / "cs.csv"), "--model", str(out)], capsys
    )
    assert code == 1
    assert "no trained model" in output
    assert not (tmp_path / "cs.csv").exists()


def test_a_corporate_run_whose_report_fails_leaves_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, out = tmp_path / "c.del", tmp_path / "run"
    main(["generate", "corporate", "-n", "600", "--out", str(data), "--seed", "4"])
    capsys.readouterr()

    def fail(*_args: Any) -> None:
        raise _disk_full()

    monkeypatch.setattr("xsell.corporate_commands.write_corporate_report", fail)
    code, output = _run(["train", "churn", str(data), "--out", str(out), *FAST], capsys)
    assert code == 1
    assert "No space left on device" in output
    assert _names(out) == {"metrics.json"}
