"""`xsell train retail --publish`, `publish`, `bundles …` and `--bundle` against the session's Redis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli as _run


def test_train_publish_activate_list_diff_rollback_export_and_score_with_a_published_bundle(
    stack_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", "cli-test")
    data = tmp_path / "c.del"
    assert _run(["generate", "retail", "-n", "2000", "--out", str(data)], capsys)[0] == 0
    code, output = _run(
        [
            "train",
            "retail",
            str(data),
            "--out",
            str(tmp_path / "a"),
            "--segments",
            "3",
            "--publish",
            "--activate",
        ],
        capsys,
    )
    assert code == 0, output
    first = output.split("published ")[1].split()[0]
    code, output = _run(
        [
            "train",
            "retail",
            str(data),
            "--out",
            str(tmp_path / "b"),
            "--segments",
            "3",
            "--min-support",
            "0.1",
        ],
        capsys,
    )
    assert code == 0, output
    code, output = _run(["publish", str(tmp_path / "b"), "--activate"], capsys)
    assert code == 0, output
    second = output.split("published ")[1].split()[0]
    assert f"was {first}" in output

    code, output = _run(["bundles", "list"], capsys)
    assert code == 0
    assert first in output
    assert second in output
    code, output = _run(["bundles", "diff", first, second], capsys)
    assert code == 0
    assert "removed" in output
    code, output = _run(["bundles", "show"], capsys)
    assert code == 0
    assert second in output
    assert "2,000 rows read" in output

    code, output = _run(
        ["cross-sell", str(data), str(tmp_path / "cs-redis.csv"), "--bundle", "active"], capsys
    )
    assert code == 0, output
    _run(
        ["cross-sell", str(data), str(tmp_path / "cs-dir.csv"), "--model", str(tmp_path / "b")],
        capsys,
    )
    from_redis = pd.read_csv(tmp_path / "cs-redis.csv")
    from_dir = pd.read_csv(tmp_path / "cs-dir.csv")
    pd.testing.assert_frame_equal(from_redis, from_dir)

    code, output = _run(["bundles", "rollback"], capsys)
    assert code == 0
    assert f"rolled back to {first}" in output
    code, output = _run(["bundles", "export", "active", str(tmp_path / "exported")], capsys)
    assert code == 0
    assert (tmp_path / "exported" / "bundle.json").is_file()
    code, output = _run(["publish", str(tmp_path / "exported")], capsys)
    assert f"published {first}" in output  # same content, same version

    code, output = _run(["bundles", "activate", "v0-nope"], capsys)
    assert code == 1
    assert "no bundle version 'v0-nope'" in output
    assert "Traceback" not in output
