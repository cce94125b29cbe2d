"""examples/branch_client.py, the program a branch team copies, against the embedded broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from rules_store.domain.outcomes import parse_outcome
from streams.kafka.clients import ensure_topics, kafka_python_options
from streams.kafka.topics import TopicNames
from tests.integration.test_tail import _alert
from xsell.embedded import EmbeddedStack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "branch_client.py"


def test_branch_client_prints_its_branchs_alerts_once_and_resumes_after_them(
    stack: EmbeddedStack,
) -> None:
    prefix = f"bc{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    alerts = [_alert(n, "b1" if n % 2 else "b2") for n in range(8)]
    alerts.append(alerts[1])  # a repeat (same alert_id), as a restarted worker may send
    for alert in alerts:
        producer.send(
            names.cross_sell_alerts,
            key=str(alert["customer_id"]).encode(),
            value=json.dumps(alert, ensure_ascii=False).encode(),
        )
    producer.flush()
    producer.close()

    def run() -> list[str]:
        done = subprocess.run(
            [
                sys.executable,
                str(EXAMPLE),
                "--bootstrap",
                stack.endpoints.kafka_bootstrap,
                "--branch",
                "b1",
                "--topic-prefix",
                prefix,
                "--from-beginning",
                "--idle",
                "3",
                "--session-timeout-ms",
                "2000",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    lines = run()
    assert sorted(line.split(" to ")[1].split()[0] for line in lines) == ["c1", "c3", "c5", "c7"]
    assert any(line.endswith("offer 国债 to c1 (holds 存款, lift 1.50)") for line in lines)
    assert run() == []  # committed: a restart shows nothing twice


def test_branch_client_shows_the_most_valuable_first_and_records_answers(
    stack: EmbeddedStack,
) -> None:
    prefix = f"bc{uuid.uuid4().hex[:8]}"
    settings = stack.settings.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    ensure_topics(settings, stack.endpoints, names.all())
    producer = KafkaProducer(**kafka_python_options(settings, stack.endpoints))
    values = [12.5, 97.0, 55.1, 80.3]
    for n, value in enumerate(values):
        alert = _alert(n, "b1") | {"value": value}
        producer.send(
            names.cross_sell_alerts,
            key=str(alert["customer_id"]).encode(),
            value=json.dumps(alert, ensure_ascii=False).encode(),
        )
    producer.flush()
    producer.close()
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--bootstrap",
            stack.endpoints.kafka_bootstrap,
            "--branch",
            "b1",
            "--topic-prefix",
            prefix,
            "--from-beginning",
            "--idle",
            "3",
            "--session-timeout-ms",
            "2000",
            "--answer",
            "declined",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = [line.split(" to ")[1].split()[0] for line in done.stdout.splitlines()]
    assert shown == ["c1", "c3", "c2", "c0"]  # by value, highest first (one poll)
    consumer = KafkaConsumer(
        names.outcomes,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        **kafka_python_options(settings, stack.endpoints),
    )
    try:
        answers = [(m.key.decode(), json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()
    assert sorted(key for key, _ in answers) == ["c0", "c1", "c2", "c3"]
    assert {(a["alert_id"], a["outcome"], a["channel"], a["branch_id"]) for _, a in answers} == {
        (f"id{n:04d}", "declined", "branch", "b1") for n in range(4)
    }
    assert all(parse_outcome(a | {"alert_id": f"{key}:{'0' * 32}"}) for key, a in answers)
