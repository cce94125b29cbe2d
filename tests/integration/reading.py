"""Reading a topic's JSON records from the beginning, as the integration tests check outputs."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer

from rules_store.settings import Endpoints, Settings
from streams.kafka.clients import group_offsets, kafka_python_options
from streams.kafka.topics import TopicNames


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


def table_updates(settings: Any, endpoints: Any, prefix: str, want: int) -> list[dict[str, Any]]:
    """The worker's holdings-table updates so far (its changelog), without recovery fences."""
    names = TopicNames(prefix)
    deadline = time.monotonic() + 90
    updates: list[dict[str, Any]] = []
    while len(updates) < want and time.monotonic() < deadline:
        updates = [
            r
            for r in read_json(settings, endpoints, names.holdings_changelog, want=want, within_s=2)
            if "customer_id" in r
        ]
    if len(updates) < want:  # say whether the worker read its input at all
        for topic in (names.holdings_snapshot, names.transactions):
            committed = group_offsets(settings, endpoints, names.engine_group, topic)
            print(f"{len(updates)} of {want} updates; worker committed on {topic}: {committed}")
    return updates
