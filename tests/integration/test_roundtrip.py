"""kafka-python produces -> a Faust agent consumes -> it writes to Redis -> the test reads back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

from rules_store.store.redis_store import open_redis
from streams.kafka.clients import ensure_topics, kafka_python_options
from xsell.embedded import EmbeddedStack
from xsell.probes import probe_broker

ROOT = Path(__file__).resolve().parents[2]


def _stop(worker: subprocess.Popen[bytes]) -> str:
    worker.terminate()
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output.decode(errors="replace")


def test_events_produced_to_kafka_reach_redis_through_a_faust_agent(
    stack: EmbeddedStack, stack_env: Path
) -> None:
    settings, endpoints = stack.settings, stack.endpoints
    topic = f"it.roundtrip.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(settings, endpoints, (topic,)) == [topic]
    assert probe_broker(settings, endpoints).topics[topic] == settings.topic_partitions

    sent = {f"customer-{i}": f"payload-{i}".encode() for i in range(40)}
    producer = KafkaProducer(**kafka_python_options(settings, endpoints))
    for key, value in sent.items():
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()

    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.roundtrip_worker", topic],
        cwd=ROOT,
        env={**os.environ, "XSELL_STATE_DIR": str(stack_env)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    redis = open_redis(settings, endpoints)
    received: dict[str, bytes | None] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            received = {key: redis.get(f"{topic}:{key}") for key in sent}
            if all(received.values()):
                break
            time.sleep(0.2)
    finally:
        output = _stop(worker)
        redis.close()
    assert received == sent, f"worker output:\n{output[-3000:]}"
