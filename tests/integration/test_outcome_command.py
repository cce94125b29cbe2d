"""`xsell outcome` against the real broker: the answer lands keyed by its customer."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer

from streams.kafka.clients import kafka_python_options
from streams.kafka.topics import TopicNames
from tests.cli import run_cli
from xsell.embedded import EmbeddedStack

ALERT = "C000042:" + "3f" * 16


def test_an_answer_is_sent_to_the_outcomes_topic_and_a_bad_one_is_refused(
    stack: EmbeddedStack, isolated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run_cli(["outcome", "C000042:" + "zz" * 16, "accepted"], capsys)
    assert code == 2
    assert "is not hexadecimal" in text
    code, text = run_cli(["outcome", ALERT, "maybe"], capsys)
    assert code == 2
    assert "'maybe' is not one of 'accepted', 'declined', 'ignored'" in text

    code, text = run_cli(
        [
            "outcome",
            ALERT,
            "declined",
            "--channel",
            "branch",
            "--branch-id",
            "B07",
            "--ts",
            "2026-11-30T10:00:00+08:00",
        ],
        capsys,
    )
    assert code == 0, text
    assert f"recorded declined for alert {ALERT} (customer C000042)" in text
    consumer = KafkaConsumer(
        TopicNames(isolated).outcomes,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        **kafka_python_options(stack.settings, stack.endpoints),
    )
    try:
        records = [(m.key, json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()
    # Keyed by the customer, so it lands on the partition holding their offers.
    assert [key for key, _ in records] == [b"C000042"]
    assert [value for _, value in records] == [
        {
            "alert_id": ALERT,
            "outcome": "declined",
            "ts": "2026-11-30T10:00:00+08:00",
            "channel": "branch",
            "branch_id": "B07",
        }
    ]
