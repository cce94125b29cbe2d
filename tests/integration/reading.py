"""Reading a topic's JSON records from the beginning, as the integration tests check outputs."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer

from rules_store.settings import Endpoints, Settings
from streams.kafka_clients import kafka_python_options


def read_json(
    settings: Settings, endpoints: Endpoints, topic: str, want: int, within_s: float = 90
) -> list[dict[str, Any]]:
    """The topic's records as JSON, once `want` of them are there or `within_s` has passed."""
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        **kafka_python_options(settings, endpoints),
    )
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            found.extend(json.loads(m.value) for m in consumer)
    finally:
        consumer.close()
    return found
