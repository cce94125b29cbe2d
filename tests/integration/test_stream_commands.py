"""The stream commands end to end: train --publish, load-snapshot, worker, replay."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rules_store.settings import Settings
from tests.cli import run_cli
from tests.integration.reading import read_json
from xsell.embedded import resolve_endpoints

XSELL = str(Path(sys.executable).with_name("xsell"))


def test_snapshot_and_replay_through_a_running_worker(
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
    # With no worker running, --wait says so instead of waiting for ever.
    code, output = run_cli(["load-snapshot", str(snapshot), "--wait", "3"], capsys)
    assert code == 1
    assert "have not read the whole snapshot within 3s" in output
    assert "Is `xsell worker` running" in output
    loaded = int(output.split("published ")[1].split()[0].replace(",", ""))
    assert loaded > 1490  # the generator leaves ~0.1% of rows with an empty field

    frame = pd.read_csv(snapshot, header=None, dtype=str, keep_default_na=False)
    without_wealth = [
        c for c, wealth in zip(frame[0], frame[31], strict=True) if wealth in ("0", "0.0")
    ]
    customers, by_kcat = without_wealth[:25], without_wealth[25:35]
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
    settings = Settings()
    endpoints = resolve_endpoints(settings)
    try:
        # The snapshot must be in the table before events that follow it (see README):
        # the rows sent above, once the worker runs, and --wait until it has read them.
        code, output = run_cli(["load-snapshot", str(snapshot), "--wait", "120"], capsys)
        assert code == 0, output
        assert "the workers have read every snapshot row" in output
        code, output = run_cli(["replay", str(replay), "--rate", "200"], capsys)
        assert code == 0, output
        assert f"sent {len(events)} events" in output
        dead = read_json(settings, endpoints, f"{prefix}.dead_letters", want=1)
        alerts = read_json(settings, endpoints, f"{prefix}.alerts.cross_sell", want=5)
        # A branch app's view: `xsell tail` for the branch, from the beginning.
        code, tailed = run_cli(
            ["tail", "--branch", "0755-01", "--from-beginning", "--max", "5", "--json"], capsys
        )
        assert code == 0, tailed
        # Faust's web server answers on loopback and on loopback only.
        port = int(os.environ["XSELL_WEB_PORT"])
        assert _listening_on(port) == {"127.0.0.1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
        # An external client: kcat produces transactions and reads the alerts they caused.
        kcat_alerts = _kcat_round_trip(endpoints.kafka_bootstrap, prefix, by_kcat)
    finally:
        worker.terminate()
        worker.communicate(timeout=60)
    assert any("not JSON" in d["reason"] for d in dead)
    assert len(alerts) >= 5
    assert all(r["customer_id"] in customers and r["branch_id"] == "0755-01" for r in alerts)
    tailed_alerts = [json.loads(line) for line in tailed.splitlines()]
    assert len(tailed_alerts) == 5
    assert {a["alert_id"] for a in tailed_alerts} <= {a["alert_id"] for a in alerts}
    assert kcat_alerts, "no alert for the transactions kcat produced"
    assert all(a["customer_id"] in by_kcat and a["branch_id"] == "kcat" for a in kcat_alerts)


def _listening_on(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


KCAT = Path(sys.executable).with_name("kcat")  # written by tools/install-kcat.sh (make test)


def _kcat_round_trip(broker: str, prefix: str, customers: list[str]) -> list[dict[str, Any]]:
    """Produce one credit per customer with kcat (key|value lines), then read the alert
    topic with kcat until an alert for one of them shows up (or 60 s pass)."""
    assert KCAT.exists(), f"{KCAT} is missing: `make test` installs it (tools/install-kcat.sh)"
    lines = "".join(
        c
        + "|"
        + json.dumps(
            {
                "event_id": f"kcat-{i}",
                "customer_id": c,
                "ts": "2026-11-23T11:00:00+08:00",
                "product": "理财",
                "kind": "credit",
                "amount": 9000.0,
                "branch_id": "kcat",
            },
            ensure_ascii=False,
        )
        + "\n"
        for i, c in enumerate(customers)
    )
    produce = [str(KCAT), "-b", broker, "-P", "-t", f"{prefix}.transactions", "-K", "|"]
    subprocess.run(produce, input=lines.encode(), check=True, timeout=60)
    consume = [str(KCAT), "-b", broker, "-C", "-t", f"{prefix}.alerts.cross_sell"]
    consume += ["-o", "beginning", "-e", "-q", "-f", "%s\n"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        read = subprocess.run(consume, capture_output=True, check=True, timeout=60).stdout
        found = [json.loads(line) for line in read.splitlines() if line.strip()]
        found = [a for a in found if a["event_id"].startswith("kcat-")]
        if found:
            return found
        time.sleep(1)
    return []
