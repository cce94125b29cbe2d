"""The live alert feed of one worker: every alert of every worker, fanned out to the
browsers and programs subscribed to `GET /alerts/stream`.

It reads the alert topics with its own kafka-python consumer, outside the workers'
consumer group (each worker must see all partitions, not its share), in a thread, so the
worker's hot path and its Faust consumer are untouched. The thread starts with the first
subscriber: reading and decoding every alert holds the interpreter lock, which cost a
worker a third of its events/s in bench/stream.py while nobody was watching. At start it
goes back a little (`RECENT` alerts per partition at most) so a dashboard opened just
after a worker restart is not empty; a subscriber gets those first, then live ones.

No record ends the thread: one that is not an alert (not strict JSON, too deep, a
tombstone, not an object, fields of the wrong type) is logged with its topic, partition and
offset, counted in `skipped` and passed over; any other error in the loop is logged and the
consumer reconnected. `alive` says whether the thread still runs (for `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from rules_store.errors import XsellError
from rules_store.settings import Endpoints, Settings
from rules_store.strict_json import loads_strict
from streams.compat.tansu import EMBEDDED_FETCH_WAIT_MS
from streams.kafka.clients import kafka_python_options

log = logging.getLogger(__name__)

RECENT = 200  # alerts kept for a new subscriber, and read back per partition at start
QUEUE_SIZE = 1_000  # a subscriber this far behind is dropped; its EventSource reconnects
RETRY_S = 2.0  # wait before reconnecting after an error


class NotAnAlertError(XsellError, ValueError):
    """A record on an alert topic that is not an alert the feed can pass on."""


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts a subscriber wants; an empty set means any."""

    types: frozenset[str] = frozenset()
    branches: frozenset[str] = frozenset()
    segments: frozenset[int] = frozenset()

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return (
            (not self.types or alert.get("type") in self.types)
            and (not self.branches or alert.get("branch_id") in self.branches)
            and (not self.segments or alert.get("segment") in self.segments)
        )


@dataclass(eq=False)
class Subscription:
    filter: AlertFilter
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )


class LiveAlerts:
    """Alerts from the alert topics, kept (the last `RECENT`) and pushed to subscribers."""

    def __init__(self, settings: Settings, endpoints: Endpoints, topics: Iterable[str]) -> None:
        self.settings, self.endpoints = settings, endpoints
        self.topics = tuple(dict.fromkeys(topics))
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.connected = False  # the consumer has its partitions and reads
        self._subscribers: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[TopicPartition, int] = {}  # where to resume after a reconnect
        self.skipped = 0  # records on the alert topics that were not alerts
        self.retry_s = RETRY_S

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def alive(self) -> bool:
        """Not started yet (it starts with its first subscriber), or its reader runs."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading (once): called with the first subscriber."""
        if self._thread is None:
            self._loop = loop
            self._thread = threading.Thread(target=self._run, name="xsell-live-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def subscribe(self, wanted: AlertFilter) -> Subscription:
        """A new subscriber, with the recent alerts it wants already queued."""
        sub = Subscription(wanted)
        for alert in self.recent:
            if wanted.matches(alert) and not sub.queue.full():
                sub.queue.put_nowait(alert)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close_all(self) -> None:
        """End every subscriber's stream (the worker is stopping)."""
        for sub in list(self._subscribers):
            self._subscribers.discard(sub)
            sub.queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, alert: dict[str, Any]) -> None:
        """Keep an alert and hand it to every subscriber that wants it (event-loop thread)."""
        self.recent.append(alert)
        for sub in list(self._subscribers):
            if not sub.filter.matches(alert):
                continue
            if sub.queue.qsize() >= QUEUE_SIZE - 1:
                # Too slow a reader: end its stream rather than hold memory for it.
                self._subscribers.discard(sub)
                sub.queue.put_nowait(None)
                log.warning("dropped a slow alert-stream subscriber (queue %s)", QUEUE_SIZE)
            else:
                sub.queue.put_nowait(alert)

    def _consumer(self) -> KafkaConsumer:
        wait_ms = self.settings.fetch_max_wait_ms or (
            EMBEDDED_FETCH_WAIT_MS if self.endpoints.embedded_broker else 500
        )
        consumer = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            client_id="xsell-live-alerts",
            fetch_max_wait_ms=wait_ms,
            **kafka_python_options(self.settings, self.endpoints),
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        back = max(1, RECENT // max(1, len(partitions)))
        for tp in partitions:
            # After a reconnect, go on from the last record read: going back again would
            # send subscribers repeats and log the skipped records a second time.
            resume = self._next.get(tp, ends[tp] - back)
            consumer.seek(tp, min(ends[tp], max(starts[tp], resume)))
        return consumer

    def _run(self) -> None:
        consumer: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                    self.connected = True
                    log.info("live alert feed reading %s", ",".join(self.topics))
                for tp, batch in consumer.poll(timeout_ms=200).items():
                    for message in batch:
                        self._hand_over(
                            message.value, f"{tp.topic}[{tp.partition}]@{message.offset}"
                        )
                        self._next[tp] = message.offset + 1
            except Exception as exc:  # the feed must outlive any one error
                self.connected = False
                if isinstance(exc, KafkaError):
                    log.warning("live alert feed: %s; retrying in %s s", exc, self.retry_s)
                else:
                    log.exception("live alert feed failed; reconnecting in %s s", self.retry_s)
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()
                consumer = None
                self._stop.wait(self.retry_s)
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.close()

    def _hand_over(self, raw: bytes | None, where: str = "a record") -> bool:
        """Pass one record's alert to the event loop; False (logged, counted) if it is none.

        The alert topics are the engine's own output, so a record that is not an alert is
        a bug or a stray producer, not customer data to keep: no dead letter, a warning.
        """
        try:
            alert = _alert_of(raw)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.publish, alert)
        except Exception as exc:  # one record must not end the feed
            self.skipped += 1
            log.warning(
                "live alert feed: skipped %s, not an alert (%s: %.200s); %d skipped so far",
                where,
                type(exc).__name__,
                exc,
                self.skipped,
            )
            return False
        return True


def _alert_of(raw: bytes | None) -> dict[str, Any]:
    """The alert a record holds, checked where the feed relies on it: the filter's fields
    (compared by hash) and an `alert_id` fit for an SSE `id:` line."""
    if raw is None:
        raise NotAnAlertError("a tombstone (no value)")
    alert = loads_strict(raw)  # no NaN/Infinity either: they would break the SSE data line
    if not isinstance(alert, dict):
        raise NotAnAlertError(f"expected a JSON object, got {type(alert).__name__}")
    alert_id, kind = alert.get("alert_id"), alert.get("type")
    if not isinstance(alert_id, str) or not alert_id.isprintable():
        raise NotAnAlertError(f"alert_id must be printable text, got {alert_id!r:.60}")
    if not isinstance(kind, str):
        raise NotAnAlertError(f"type must be text, got {kind!r:.60}")
    branch, segment = alert.get("branch_id"), alert.get("segment")
    if branch is not None and not isinstance(branch, str):
        raise NotAnAlertError(f"branch_id must be text or null, got {branch!r:.60}")
    if segment is not None and (isinstance(segment, bool) or not isinstance(segment, int)):
        raise NotAnAlertError(f"segment must be an integer or null, got {segment!r:.60}")
    return alert
