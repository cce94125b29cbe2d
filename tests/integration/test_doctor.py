"""`xsell doctor` against a healthy stack, a stack whose broker died, and no stack at all."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rules_store.settings import Settings
from streams.kafka.clients import ensure_topics
from streams.kafka.topics import TopicNames
from xsell.cli import cli
from xsell.embedded import EmbeddedStack


def _doctor(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["doctor", "--json", "--timeout", "2", *args])
    return result.exit_code, json.loads(result.output)


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(check for check in report["checks"] if check["name"] == name)


def test_doctor_passes_on_a_healthy_stack_and_lists_topics_and_versions(
    stack: EmbeddedStack, stack_env: Path
) -> None:
    names = TopicNames(stack.settings.topic_prefix).all()
    ensure_topics(stack.settings, stack.endpoints, names)
    code, report = _doctor()
    assert code == 0
    assert report["ok"] is True
    assert {_check(report, name)["status"] for name in ("broker", "redis", "engine topics")} == {
        "ok"
    }
    assert report["endpoints"]["kafka_bootstrap"] == stack.endpoints.kafka_bootstrap
    assert all(report["topics"][name] == stack.settings.topic_partitions for name in names)
    assert report["versions"]["redis-server"].count(".") == 2
    assert "faust-streaming" in report["versions"]


def test_doctor_fails_with_the_reason_when_the_broker_has_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XSELL_STATE_DIR", str(tmp_path))
    with EmbeddedStack(Settings(state_dir=tmp_path)) as doomed:
        assert doomed.broker is not None
        assert doomed.broker.pid is not None
        os.kill(doomed.broker.pid, signal.SIGKILL)
        code, report = _doctor()
    assert code == 1
    assert report["ok"] is False
    broker = _check(report, "broker")
    assert broker["status"] == "fail"
    assert doomed.endpoints.kafka_bootstrap in broker["detail"]
    assert _check(report, "redis")["status"] == "ok"


def test_doctor_fails_on_configured_addresses_where_nothing_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xsell.processes import free_port

    monkeypatch.setenv("XSELL_KAFKA_BROKERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("XSELL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, report = _doctor()
    assert code == 1
    assert _check(report, "broker")["status"] == "fail"
    assert _check(report, "redis")["status"] == "fail"
    assert "refused" in _check(report, "redis")["detail"].lower()


def test_doctor_without_a_stack_says_to_start_one() -> None:
    code, report = _doctor()
    assert code == 1
    assert "xsell up" in _check(report, "addresses")["detail"]
