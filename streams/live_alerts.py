"""The live alert feed of one worker: every alert of every worker, fanned out to the
browsers and programs subscribed to `GET /alerts/stream`.

It reads the alert topics with its own kafka-python consumer, outside the workers'
consumer group (each worker must see all partitions, not its share), in a thread, so the
worker's hot path and its Faust consumer are untouched. The thread starts with the first
subscriber: reading and decoding every alert holds the interpreter lock, which cost a
worker a third of its events/s in bench/stream.py while nobody was watching. At start it
goes back a little (`RECENT` alerts per partition at most) so a dashboard opened just
after a worker restart is not empty; a subscriber gets those first, then live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from rules_store.settings import Endpoints, Settings
from streams.kafka_clients import kafka_python_options
from streams.tansu import EMBEDDED_FETCH_WAIT_MS

log = logging.getLogger(__name__)

RECENT = 200  # alerts kept for a new subscriber, and read back per partition at start
QUEUE_SIZE = 1_000  # a subscriber this far behind is dropped; its EventSource reconnects


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
            consumer.seek(tp, max(starts[tp], ends[tp] - back))
        return consumer

    def _run(self) -> None:
        consumer: KafkaConsumer | None = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                    self.connected = True
                    log.info("live alert feed reading %s", ",".join(self.topics))
                for batch in consumer.poll(timeout_ms=200).values():
                    for message in batch:
                        self._hand_over(message.value)
            except KafkaError as exc:
                self.connected = False
                log.warning("live alert feed: %s; retrying in 2 s", exc)
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()
                consumer = None
                self._stop.wait(2)
        if consumer is not None:
            consumer.close()

    def _hand_over(self, raw: bytes | None) -> None:
        try:
            alert = json.loads(raw or b"")
        except ValueError:
            return  # the engine writes JSON only; anything else is not ours
        if isinstance(alert, dict) and self._loop is not None:
            self._loop.call_soon_threadsafe(self.publish, alert)
