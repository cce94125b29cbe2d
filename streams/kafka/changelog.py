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
    """Each customer's last state in the changelog `topic`, read until `idle_ms` pass quietly.

    The recovery fences (streams/compat/tansu.py) carry no customer and are skipped.
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
            state = json.loads(message.value) if message.value else {}
            if "customer_id" in state:
                latest[state["customer_id"]] = state
    finally:
        consumer.close()
    return latest
