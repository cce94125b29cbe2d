"""Reading the workers' holdings table from outside: its changelog, latest state per customer."""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaConsumer

from rules_store.settings import Endpoints, Settings
from streams.kafka.clients import kafka_python_options


def latest_states(
    settings: Settings, endpoints: Endpoints, topic: str, *, idle_ms: int = 2000
) -> dict[str, dict[str, Any]]:
    """Each table key's last value in the changelog `topic` (a customer's state, or a
    partition's acceptance counts), read until `idle_ms` pass quietly.

    The recovery fences (streams/compat/tansu.py) are JSON strings, not objects: skipped.
    """
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        consumer_timeout_ms=idle_ms,
        **kafka_python_options(settings, endpoints),
    )
    latest: dict[str, dict[str, Any]] = {}
    try:
        for message in consumer:
            value = json.loads(message.value) if message.value else None
            if isinstance(value, dict) and message.key:
                latest[json.loads(message.key)] = value
    finally:
        consumer.close()
    return latest
