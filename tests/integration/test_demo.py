"""`xsell demo` end to end: its own stack, a worker, live alerts, a summary, a clean exit."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_runs_the_whole_engine_and_accounts_for_every_event(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xsell",
            "demo",
            "--customers",
            "1500",
            "--days",
            "6",
            "--rate",
            "3000",
            "--malformed",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo summary" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    lines = (out / "events.jsonl").read_bytes().splitlines()
    manifest = json.loads((out / "events.jsonl.manifest.json").read_text())
    assert summary["events_in"] == len(lines) == manifest["events"]
    assert summary["valid_events"] == len(lines) - 4
    assert summary["dead_letters"] == 4  # exactly the planted malformed records
    assert summary["alerts"]["cross_sell"] > 0
    # The planted drainers, and no one else, are flagged at churn risk.
    assert summary["churn_customers"] == {
        "planted_drainers": len(manifest["churn_expected"]),
        "flagged_drainers": len(manifest["churn_expected"]),
        "flagged_others": 0,
    }
    assert summary["alerts"]["churn"] == len(manifest["churn_expected"]) > 0
    assert summary["latency_ms"]["p50"] is not None
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert (out / "model" / "report.html").exists()
    # The demo's own stack is gone: its run file removed, nothing listening where it was.
    assert not (out / "state" / "embedded.json").exists()
    found = re.search(
        r"embedded broker 127\.0\.0\.1:(\d+), Redis redis://127\.0\.0\.1:(\d+)", done.stderr
    )
    assert found, done.stderr[-2000:]
    for port in found.groups():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
