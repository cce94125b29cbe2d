"""Sending events and snapshot rows to their topics, for `xsell replay`, `load-snapshot` and `demo`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from kafka import KafkaProducer

from rules_store.settings import Endpoints, Settings
from streams.kafka_clients import group_offsets
from streams.topics import TopicNames


class Sent:
    """What a replay sent: each event's send time (for latency) and, per partition, the
    offset after its last record (to tell when a consumer group has read everything)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # event_id -> wall-clock send time
        self.ends: dict[int, int] = {}  # partition -> last offset + 1
        self.count = 0
        self._lock = threading.Lock()

    def _acked(self, partition: int, offset: int) -> None:
        with self._lock:  # called from the producer's I/O thread
            self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)


def _key_and_id(line: bytes, key_field: str) -> tuple[bytes | None, str | None]:
    try:
        event = json.loads(line)
        return str(event[key_field]).encode(), event.get("event_id")
    except (ValueError, KeyError, TypeError):
        return None, None  # malformed: sent as it is, the workers dead-letter it


def send_lines(
    producer: KafkaProducer,
    topic: str,
    lines: Iterable[bytes],
    *,
    rate: float | None = None,
    sent: Sent | None = None,
    key_field: str = "customer_id",
) -> Sent:
    """Send each non-blank line keyed by its `key_field`, at `rate` per second if given."""
    sent = sent or Sent()
    started = time.monotonic()
    for line in lines:
        if not line.strip():
            continue
        key, event_id = _key_and_id(line, key_field)
        if event_id is not None:
            sent.at[str(event_id)] = time.time()
        future = producer.send(topic, key=key, value=line)
        future.add_callback(lambda meta: sent._acked(meta.partition, meta.offset))
        sent.count += 1
        if rate is not None:
            ahead = sent.count / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    return sent


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def snapshot_lines(frame: pd.DataFrame) -> tuple[list[bytes], int]:
    """One JSON line per complete snapshot row (the bank's field names), and how many rows
    were left out for empty fields."""
    complete = frame.notna().all(axis=1)
    lines = [
        json.dumps({k: _plain(v) for k, v in record.items()}, ensure_ascii=False).encode()
        for record in frame[complete].to_dict("records")
    ]
    return lines, int((~complete).sum())


def unread(
    settings: Settings, endpoints: Endpoints, topic: str, ends: Mapping[int, int]
) -> dict[int, tuple[int, int]]:
    """Partitions of `topic` where the workers' group has not yet committed up to `ends`
    (partition -> offset after the last record sent): partition -> (committed, end)."""
    group = TopicNames(settings.topic_prefix).engine_group
    committed = group_offsets(settings, endpoints, group, topic)
    return {p: (committed.get(p, 0), end) for p, end in ends.items() if committed.get(p, 0) < end}
