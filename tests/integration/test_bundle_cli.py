"""`xsell train retail --publish`, `publish`, `bundles …` and `--bundle` against the session's Redis."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.redis_store import BundleStore, open_redis
from tests.cli import run_cli as _run
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack


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
            "--rankers",
            "rules",  # the second bundle carries a learned ranker through Redis
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


def test_a_version_with_malformed_metadata_or_a_non_utf8_active_pointer_is_one_line_not_a_traceback(
    stack: EmbeddedStack,
    stack_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", "cli-bad")
    # An earlier test's `xsell` run left log handlers on its (now closed) captured stderr;
    # the store below logs before this test's first `xsell` run replaces them.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    data = tmp_path / "c.del"
    write_retail(generate_retail(400, seed=9, dirty_share=0.0), data, "del")
    client = open_redis(stack.settings, stack.endpoints)
    request.addfinalizer(client.close)
    store = BundleStore(client, "cli-bad")
    good, other = (
        store.publish(train_retail(data, RETAIL_SCHEMA, TrainParams(segments=k)).bundle)
        for k in (2, 3)
    )
    store.activate(good)
    # Metadata no xsell wrote: a size that is not a number, a summary that is not JSON.
    store.client.hset(store.keys.meta(other), mapping={"size": "big", "summary": "{"})
    store.client.zadd(store.keys.versions, {"v0-empty": 1})  # indexed, but no metadata at all

    code, output = _run(["bundles", "list"], capsys)
    assert code == 0, output
    assert "Traceback" not in output
    assert good in output
    bad_lines = [line for line in output.splitlines() if "xsell bundles delete" in line]
    assert len(bad_lines) == 2, output
    assert any(other in line and "malformed metadata" in line for line in bad_lines)
    assert any("v0-empty" in line and "no metadata" in line for line in bad_lines)
    code, output = _run(["bundles", "delete", other, "v0-empty"], capsys)
    assert code == 0, output
    assert [v.version for v in store.versions()] == [good]
    code, output = _run(["bundles", "delete", good], capsys)
    assert code == 1
    assert "the active version is never deleted" in output

    store.client.set(store.keys.active, b"\xff\xfe-not-a-version")
    code, output = _run(["bundles", "show", "active"], capsys)
    assert code == 1
    assert "Traceback" not in output
    assert "not a version id" in output
    assert "xsell bundles activate" in output
    code, output = _run(["bundles", "list"], capsys)
    assert code == 0, output
    assert good in output
    code, output = _run(["bundles", "activate", good], capsys)
    assert code == 0, output
    assert _run(["bundles", "show"], capsys)[0] == 0
