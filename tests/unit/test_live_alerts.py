"""The live alert feed's reader: no record, and no error in its loop, ends it.

The consumer here is a stand-in (only its `poll` and `close` are used): this is the
thread's own logic; the feed against the real broker is in tests/integration/test_web_api.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from kafka import TopicPartition

from rules_store.settings import Endpoints, Settings
from streams.web.live_feed import AlertFilter, LiveAlerts

TOPIC = "xsell.alerts.cross_sell"
GOOD = {"alert_id": "a1", "type": "cross_sell", "branch_id": "b1", "segment": 2}
BAD_RECORDS: list[bytes | None] = [
    b"[" * 10_000 + b"]" * 10_000,  # RecursionError in json.loads
    None,  # a tombstone
    b"\xff\xfe{}",  # not UTF-8
    b"[1, 2]",  # JSON, not an object
    b'{"alert_id": "a0", "type": "churn", "drop": NaN}',  # not strict JSON
    json.dumps(GOOD | {"type": ["cross_sell"]}).encode(),  # unhashable: the filter would raise
    json.dumps(GOOD | {"alert_id": "a2\ndata: {}"}).encode(),  # would add an SSE line
]


class Record(NamedTuple):
    offset: int
    value: bytes | None


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAlerts]:
    endpoints = Endpoints("127.0.0.1:9", "redis://127.0.0.1:9/0", True, True)
    feed = LiveAlerts(Settings(state_dir=tmp_path), endpoints, [TOPIC])
    loop = asyncio.new_event_loop()
    feed._loop = loop
    yield feed
    loop.close()


def _published(feed: LiveAlerts) -> list[dict[str, Any]]:
    assert feed._loop is not None
    feed._loop.run_until_complete(asyncio.sleep(0))  # run the call_soon_threadsafe callbacks
    return list(feed.recent)


def test_hand_over_skips_and_counts_records_that_are_not_alerts(live: LiveAlerts) -> None:
    for raw in BAD_RECORDS:
        assert live._hand_over(raw, "bad") is False
    assert live._hand_over(json.dumps(GOOD).encode(), "good") is True
    assert live.skipped == len(BAD_RECORDS)
    assert _published(live) == [GOOD]
    sub = live.subscribe(AlertFilter(types=frozenset({"cross_sell"})))
    assert sub.queue.get_nowait() == GOOD


class FakeConsumer:
    """Answers `poll` from a script: a batch of records, or an exception to raise."""

    def __init__(self, script: list[list[Record] | Exception], feed: LiveAlerts) -> None:
        self.script, self.feed, self.closed = script, feed, False

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        if not self.script:
            self.feed._stop.set()  # the script is played: end the loop
            return {}
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return {TopicPartition(TOPIC, 0): step}

    def close(self) -> None:
        self.closed = True


def test_reader_loop_outlives_bad_records_and_unexpected_errors(
    live: LiveAlerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FakeConsumer(
        [
            [Record(offset, raw) for offset, raw in enumerate(BAD_RECORDS)],
            [Record(len(BAD_RECORDS), json.dumps(GOOD).encode())],
            RuntimeError("an unexpected failure inside the client"),
        ],
        live,
    )
    second_alert = GOOD | {"alert_id": "a3"}
    second = FakeConsumer([[Record(len(BAD_RECORDS) + 1, json.dumps(second_alert).encode())]], live)
    consumers = iter([first, second])
    monkeypatch.setattr(live, "_consumer", lambda: next(consumers))
    live.retry_s = 0
    live._run()  # returns only once the second consumer's script is played
    assert first.closed  # the failed consumer was closed and replaced
    assert live.skipped == len(BAD_RECORDS)
    assert _published(live) == [GOOD, second_alert]
    assert live._next[TopicPartition(TOPIC, 0)] == len(BAD_RECORDS) + 2  # resume point


def test_alive_until_the_thread_ends(live: LiveAlerts, monkeypatch: pytest.MonkeyPatch) -> None:
    assert live.alive  # not started: it starts with the first subscriber
    monkeypatch.setattr(live, "_run", lambda: None)
    assert live._loop is not None
    live.start(live._loop)
    assert live._thread is not None
    live._thread.join()
    assert not live.alive
