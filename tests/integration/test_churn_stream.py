"""Churn alerts through a running worker, from the commands a bank's engineer would type.

A snapshot with its months table and corporate fields, a bundle with a churn model, a
week of generated events with planted drainers, a reversal and two late events: exactly
the drainers are flagged (each alert with the churn model's probability), the reversal
is not, the event past the grace period is dead-lettered with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from rules_store.settings import Settings
from tests.cli import run_cli
from tests.integration.reading import read_json
from xsell.embedded import resolve_endpoints

XSELL = str(Path(sys.executable).with_name("xsell"))


def _event(customer: str, event_id: str, ts: str, kind: str, amount: float) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer,
            "ts": ts,
            "product": "存款",
            "kind": kind,
            "amount": amount,
            "branch_id": "b-test",
        },
        ensure_ascii=False,
    )


def test_exactly_the_planted_drainers_are_flagged_and_late_events_are_handled(
    stack_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", prefix)
    snapshot, events = tmp_path / "customers.del", tmp_path / "events.jsonl"
    corporate = tmp_path / "corporate.csv"
    for args in (
        ["generate", "retail", "-n", "800", "--out", str(snapshot), "--seed", "6"],
        ["train", "retail", str(snapshot), "--out", str(tmp_path / "run"), "--segments", "3"],
        ["generate", "events", "--snapshot", str(snapshot), "--days", "7", "--drainers", "6",
         "--out", str(events)],
        ["generate", "corporate", "-n", "800", "--out", str(corporate), "--dirty-share", "0"],
    ):  # fmt: skip
        code, output = run_cli(args, capsys)
        assert code == 0, output
    # The same customers, as the corporate file knows them.
    rows = pd.read_csv(snapshot, header=None, dtype={0: str})
    firms = pd.read_csv(corporate, dtype={"客户编号": str})
    firms["客户编号"] = rows[0].to_numpy()
    firms.to_csv(corporate, index=False)
    for args in (
        ["train", "churn", str(corporate), "--out", str(tmp_path / "churn-run"), "--folds", "3",
         "--trees", "20", "--iterations", "30"],
        ["publish", str(tmp_path / "run"), "--churn-model", str(tmp_path / "churn-run"),
         "--activate"],
    ):  # fmt: skip
        code, output = run_cli(args, capsys)
        assert code == 0, output
    threshold = json.loads((tmp_path / "churn-run" / "model.json").read_text())["threshold"]
    manifest = json.loads(events.with_name("events.jsonl.manifest.json").read_text())
    drainers = manifest["churn_expected"]
    assert len(drainers) == 6
    months_file = events.with_name("events.jsonl.months.csv")

    # An ordinary customer's mistaken withdrawal of all their deposits, reversed the same
    # day; then, once the stream is on Nov 7: a late deposit dated Nov 5 (within the grace
    # period) and one dated Nov 2 (past it).
    deposits = dict(zip(rows[0], rows[29], strict=True))  # 客户编号, 存款余额
    ordinary = next(c for c, d in deposits.items() if c not in drainers and d > 50_000)
    lines = events.read_text(encoding="utf-8").splitlines()
    reversal = [
        _event(ordinary, "rev-debit", "2026-11-04T07:00:00+08:00", "debit", deposits[ordinary]),
        _event(ordinary, "rev-credit", "2026-11-04T07:30:00+08:00", "credit", deposits[ordinary]),
    ]
    day4 = next(i for i, x in enumerate(lines) if json.loads(x)["ts"] >= "2026-11-04")
    lines[day4:day4] = reversal
    extra = [
        _event(ordinary, "late-ok", "2026-11-05T10:00:00+08:00", "credit", 100.0),
        _event(ordinary, "late-too-old", "2026-11-02T10:00:00+08:00", "credit", 100.0),
    ]
    events.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")

    worker = subprocess.Popen(
        [XSELL, "worker"], env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    settings = Settings()
    endpoints = resolve_endpoints(settings)
    try:
        code, output = run_cli(
            ["load-snapshot", str(snapshot), "--months", str(months_file),
             "--corporate", str(corporate), "--wait", "120"],
            capsys,
        )  # fmt: skip
        assert code == 0, output
        assert "balances as of 2026-10-31" in output
        assert "corporate fields for 800 customers" in output
        code, output = run_cli(["replay", str(events), "--rate", "2000"], capsys)
        assert code == 0, output
        dead = read_json(settings, endpoints, f"{prefix}.dead_letters", want=1)
        churn = read_json(settings, endpoints, f"{prefix}.alerts.churn", want=len(drainers))
        time.sleep(3)  # then one more look: no other customer may be flagged
        churn = read_json(
            settings, endpoints, f"{prefix}.alerts.churn", want=len(drainers) + 1, within_s=5
        )
    finally:
        worker.terminate()
        worker.wait(60)

    assert sorted(a["customer_id"] for a in churn) == sorted(drainers)  # and not `ordinary`
    for alert in churn:
        figures = alert["figures"]
        assert figures["drop"] > 0.5
        assert figures["month_avg"] < 0.5 * figures["baseline_avg"]
        assert figures["baseline_months"] == ["2026-10", "2026-09", "2026-08"]
        assert 1 <= figures["days_counted"] <= 6
        assert alert["month"] == "2026-11"
        assert alert["segment"] in (0, 1, 2)
        assert alert["bundle_version"]
        assert alert["event_id"] == f"day-closed:{figures['day']}"
        model = alert["model"]
        assert 0.0 <= model["probability"] <= 1.0
        if abs(model["probability"] - threshold) > 1e-4:  # shown rounded to 4 places
            assert model["predicted"] == (model["probability"] >= threshold)
        assert model["threshold"] == threshold
        assert model["corporate_as_of"] == "2026-10-31"
        assert model["from_holdings"] == ["产品持有数"]
        assert "近一年交易天数" in model["from_corporate"]
    assert len({a["alert_id"] for a in churn}) == len(drainers)
    too_late = [d for d in dead if b"late-too-old" in json.dumps(d).encode()]
    assert len(too_late) == 1, dead
    assert "more than 3 days before" in too_late[0]["reason"]
    assert not [d for d in dead if "late-ok" in json.dumps(d)]
