"""The embedded Redis dies under a running stack: restarted on its port, the broker untouched."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import time
from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import kafka_python_options
from streams.kafka.topics import TopicNames
from tests.integration.reading import read_json
from tests.integration.test_lifecycle import _start_up, _wait_gone
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack, redis_binary
from xsell.probes import probe_broker
from xsell.restarts import RestartPolicy
from xsell.runfile import pid_alive, read_run_file


def _answers_ping(client: redis.Redis, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return True
        except (redis.RedisError, ServiceUnavailableError):
            pass
        time.sleep(0.1)
    return False


def test_killed_redis_comes_back_on_its_port_with_its_bundles_and_the_broker_keeps_its_records(
    tmp_path: Path,
) -> None:
    data = tmp_path / "c.del"
    write_retail(generate_retail(1_000, seed=4), data, "del")
    bundle = train_retail(data, RETAIL_SCHEMA, TrainParams(segments=2)).bundle
    process, info = _start_up(tmp_path / "state")
    assert info.kafka_bootstrap
    assert info.redis_url
    assert info.broker_pid
    assert info.redis_pid
    settings = Settings(state_dir=tmp_path / "state")
    endpoints = Endpoints(
        info.kafka_bootstrap, info.redis_url, embedded_broker=True, embedded_redis=True
    )
    topic = TopicNames(settings.topic_prefix).transactions
    after = None
    client = open_redis(settings, endpoints, timeout_s=1)
    try:
        producer = KafkaProducer(**kafka_python_options(settings, endpoints))
        producer.send(topic, key=b"c1", value=b'{"sent": "before the kill"}').get(timeout=30)
        producer.close()
        store = BundleStore(client, settings.redis_key_prefix)
        version = store.publish(bundle)
        store.activate(version)

        os.kill(info.redis_pid, signal.SIGKILL)
        assert _wait_gone([info.redis_pid]) == []

        assert _answers_ping(client, within_s=15), "Redis did not come back on its port"
        assert process.poll() is None, "`xsell up` stopped"
        assert pid_alive(info.broker_pid)
        assert store.load() == (version, bundle)  # read back from the append-only file
        records = read_json(settings, endpoints, topic, want=1, within_s=30)
        assert records == [{"sent": "before the kill"}]  # the broker is the same one
        after = read_run_file(settings.run_file)
        assert after is not None
        assert (after.redis_url, after.kafka_bootstrap) == (info.redis_url, info.kafka_bootstrap)
        assert after.redis_pid not in (None, info.redis_pid)
        assert after.broker_pid == info.broker_pid
    finally:
        client.close()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert "embedded stack stopped" in err
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    restarted = [e for e in logged if e["msg"].startswith("embedded redis restarted")]
    assert [(e["service"], e["restart"], e["url"]) for e in restarted] == [
        ("redis", 1, info.redis_url)
    ]
    assert _wait_gone([info.broker_pid, after.redis_pid or 0]) == []
    assert not settings.run_file.exists()


def _redis_that_starts_once(tmp_path: Path) -> str:
    marker = tmp_path / "started-once"
    script = tmp_path / "redis-server"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ -e "{marker}" ]; then echo "fake redis: refusing to start again"; exit 1; fi\n'
        f'touch "{marker}"\n'
        f'exec "{redis_binary()}" "$@"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_redis_that_keeps_dying_is_given_up_on_and_the_broker_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XSELL_REDIS_SERVER_BIN", _redis_that_starts_once(tmp_path))
    settings = Settings(state_dir=tmp_path / "state")
    policy = RestartPolicy(max_restarts=2, first_delay_s=0.05)
    with EmbeddedStack(settings, restart_policy=policy) as stack:
        assert stack.broker is not None
        assert stack.redis is not None
        assert stack.redis.pid is not None
        os.kill(stack.redis.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        with caplog.at_level(logging.WARNING, logger="xsell.embedded"):
            while not stack.redis_given_up and time.monotonic() < deadline:
                assert stack.supervise() is None  # never a reason to stop the stack
                time.sleep(0.05)
        assert stack.redis_given_up
        assert len(stack.redis_restarts) == 2
        assert stack.supervise() is None
        assert stack.broker.exit_code() is None
        probe_broker(settings, stack.endpoints, timeout_s=5)
        broker_pid = stack.broker.pid
        log_path = stack.redis.log_path
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(given_up) == 1
    assert "keeps dying" in given_up[0].getMessage()
    assert "refusing to start again" in given_up[0].getMessage()
    assert broker_pid is not None
    assert _wait_gone([broker_pid]) == []
    assert not settings.run_file.exists()
    assert "refusing to start again" in log_path.read_text()  # kept for the post-mortem
