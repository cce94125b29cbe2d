"""The stream commands end to end: train --publish, load-snapshot, worker, replay, tail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli

XSELL = str(Path(sys.executable).with_name("xsell"))


def test_snapshot_replay_and_tail_through_a_running_worker(
    stack_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", prefix)
    snapshot = tmp_path / "customers.del"
    assert (
        run_cli(
            ["generate", "retail", "-n", "1500", "--out", str(snapshot), "--seed", "4"], capsys
        )[0]
        == 0
    )
    code, output = run_cli(
        [
            "train",
            "retail",
            str(snapshot),
            "--out",
            str(tmp_path / "run"),
            "--segments",
            "3",
            "--publish",
            "--activate",
        ],
        capsys,
    )
    assert code == 0, output
    code, output = run_cli(["load-snapshot", str(snapshot)], capsys)
    assert code == 0, output
    loaded = int(output.split("published ")[1].split()[0].replace(",", ""))
    assert loaded > 1490  # the generator leaves ~0.1% of rows with an empty field

    frame = pd.read_csv(snapshot, header=None, dtype=str, keep_default_na=False)
    customers = [
        c for c, wealth in zip(frame[0], frame[31], strict=True) if wealth in ("0", "0.0")
    ][:25]
    events = [
        json.dumps(
            {
                "event_id": f"e{i}",
                "customer_id": c,
                "ts": "2026-11-23T10:00:00+08:00",
                "product": "理财",
                "kind": "credit",
                "amount": 8000.0,
                "branch_id": "0755-01",
            },
            ensure_ascii=False,
        )
        for i, c in enumerate(customers)
    ]
    events.append('{"event_id": "broken", ')
    replay = tmp_path / "events.jsonl"
    replay.write_text("\n".join(events) + "\n", encoding="utf-8")

    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        code, output = run_cli(["replay", str(replay), "--rate", "200"], capsys)
        assert code == 0, output
        assert f"sent {len(events)} events" in output
        code, dead = run_cli(
            [
                "tail",
                "--type",
                "dead",
                "--from-beginning",
                "--max",
                "1",
                "--seconds",
                "60",
                "--group",
                "t1",
            ],
            capsys,
        )
        assert code == 0
        assert "not JSON" in dead
        code, alerts = run_cli(
            [
                "tail",
                "--from-beginning",
                "--max",
                "5",
                "--branch",
                "0755-01",
                "--json",
                "--group",
                "t2",
            ],
            capsys,
        )
        assert code == 0
    finally:
        worker.terminate()
        worker.communicate(timeout=60)
    records = [json.loads(line) for line in alerts.splitlines() if line.startswith("{")]
    assert len(records) == 5
    assert all(r["customer_id"] in customers and r["branch_id"] == "0755-01" for r in records)
