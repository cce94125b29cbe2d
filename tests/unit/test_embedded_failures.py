"""A service that dies or never answers: a clear error with its log, nothing left running."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Settings
from xsell.embedded import EmbeddedStack, resolve_endpoints
from xsell.runfile import RunInfo, pid_alive, write_run_file


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_broker_that_exits_is_reported_with_its_exit_code_and_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = _script(tmp_path / "tansu", 'echo "error: cannot open storage engine"; exit 3')
    monkeypatch.setenv("CALF_TANSU_BIN", broker)
    stack = EmbeddedStack(Settings(state_dir=tmp_path / "state"), ready_timeout_s=10)
    with pytest.raises(ServiceUnavailableError) as caught:
        stack.start()
    message = str(caught.value)
    assert "embedded broker exited with code 3" in message
    assert "cannot open storage engine" in message


def test_service_that_never_answers_times_out_and_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = _script(tmp_path / "redis-server", 'echo "warming up"; exec sleep 60')
    monkeypatch.setenv("XSELL_REDIS_SERVER_BIN", redis)
    settings = Settings(state_dir=tmp_path / "state", kafka_brokers="127.0.0.1:9")
    stack = EmbeddedStack(settings, ready_timeout_s=1.0)
    with pytest.raises(ServiceUnavailableError, match=r"did not answer within 1s[\s\S]*warming up"):
        stack.start()
    assert stack.redis is not None
    assert stack.redis.pid is not None
    assert not pid_alive(stack.redis.pid)
    assert not settings.run_file.exists()


def test_commands_without_addresses_or_a_running_stack_say_how_to_start_one(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path)
    with pytest.raises(ServiceUnavailableError, match="xsell up") as caught:
        resolve_endpoints(settings)
    assert "XSELL_KAFKA_BROKERS and XSELL_REDIS_URL" in str(caught.value)


def test_configured_addresses_are_used_as_they_are(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_brokers="k:9092", redis_url="redis://r:6379/0")
    endpoints = resolve_endpoints(settings)
    assert (endpoints.kafka_bootstrap, endpoints.redis_url) == ("k:9092", "redis://r:6379/0")
    assert not endpoints.embedded_broker
    assert not endpoints.embedded_redis


def test_rules_store_commands_need_only_redis(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, redis_url="redis://r:6379/0")
    endpoints = resolve_endpoints(settings, need_kafka=False)
    assert endpoints.redis_url == "redis://r:6379/0"
    assert not endpoints.embedded_redis
    with pytest.raises(ServiceUnavailableError, match="XSELL_KAFKA_BROKERS not set"):
        resolve_endpoints(settings)


def test_a_running_stacks_broker_gives_workers_its_run_dir_for_their_tables(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path)
    info = RunInfo(os.getpid(), "127.0.0.1:9", "redis://127.0.0.1:9/0", None, None, "t")
    write_run_file(settings.run_file, info)
    assert resolve_endpoints(settings).stack_dir == tmp_path / "stacks" / str(os.getpid())
    configured = settings.model_copy(update={"kafka_brokers": "k:9092"})
    assert resolve_endpoints(configured).stack_dir is None  # a real broker outlives the stack
