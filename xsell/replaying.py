"""Sending events and snapshot rows to their topics, for `xsell replay`, `load-snapshot` and `demo`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from kafka import KafkaProducer

from rules_store.settings import Endpoints, Settings
from streams.kafka.clients import group_offsets
from streams.kafka.topics import TopicNames


class Sent:
    """What a replay sent: each event's send time (for latency) and, per partition, the
    offset after its last record (to tell when a consumer group has read everything)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # event_id -> wall-clock send time
        self.ends: dict[int, int] = {}  # partition -> last offset + 1
        self.count = 0
        self._lock = threading.Lock()

    def acked(self, partition: int, offset: int) -> None:
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
        future.add_callback(lambda meta: sent.acked(meta.partition, meta.offset))
        sent.count += 1
        if rate is not None:
            ahead = sent.count / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    return sent


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class History:
    """Balance history for the churn test: the day the snapshot's balances close, and
    per customer their months table (YYYY-MM -> average daily financial assets)."""

    as_of: date
    months: Mapping[str, Mapping[str, float]]

    @classmethod
    def ending_with_table(cls, months: Mapping[str, Mapping[str, float]]) -> History:
        """As of the last day of the table's latest month: a month-end snapshot."""
        latest = max((m for history in months.values() for m in history), default=None)
        if latest is None:
            msg = "the months table has no rows"
            raise ValueError(msg)
        first = date.fromisoformat(f"{latest}-01")
        return cls((first + timedelta(days=32)).replace(day=1) - timedelta(days=1), months)


def snapshot_lines(
    frame: pd.DataFrame,
    id_column: str,
    history: History | None = None,
    corporate: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[bytes], int]:
    """One JSON line per complete snapshot row (the bank's field names, plus `as_of` and
    `months` when a history is given, and the customer's corporate fields when given),
    and how many rows were left out for empty fields."""
    complete = frame.notna().all(axis=1)
    lines = []
    for record in frame[complete].to_dict("records"):
        row = {k: _plain(v) for k, v in record.items()}
        if history is not None:
            row["as_of"] = history.as_of.isoformat()
            if months := history.months.get(str(row[id_column])):
                row["months"] = dict(months)
        if corporate is not None and (fields := corporate.get(str(row[id_column]))):
            row |= {k: _plain(v) for k, v in fields.items()}
        lines.append(json.dumps(row, ensure_ascii=False).encode())
    return lines, int((~complete).sum())


def unread(
    settings: Settings, endpoints: Endpoints, topic: str, ends: Mapping[int, int]
) -> dict[int, tuple[int, int]]:
    """Partitions of `topic` where the workers' group has not yet committed up to `ends`
    (partition -> offset after the last record sent): partition -> (committed, end)."""
    group = TopicNames(settings.topic_prefix).engine_group
    committed = group_offsets(settings, endpoints, group, topic)
    return {p: (committed.get(p, 0), end) for p, end in ends.items() if committed.get(p, 0) < end}
