"""The stall watch on a stand-in for Faust's app: what it restarts, logs and counts."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from rules_store.views.metrics import EngineMetrics, render_prometheus
from streams.processing.progress import AgentProgress
from streams.stall_watch import StallWatch

T0, T1 = TP("t", 0), TP("t", 1)


class Consumer:
    """What the watch uses of Faust's consumer, and the private sets the log line reads."""

    def __init__(self) -> None:
        self.ends = {T0: 50, T1: 20}  # the broker's answer
        self.fetched: dict[TP, int] = {}  # the ends the last fetches saw
        self.seeks: list[tuple[TP, int]] = []
        self.resumed: list[TP] = []
        self._active_partitions: set[TP] = {T1}  # T0 dropped out of the fetch set
        self._paused_partitions: set[TP] = set()
        self._buffered_partitions: set[TP] = set()
        self._read_offset = {T0: 40, T1: 19}
        self._committed_offset: dict[TP, int | None] = {T0: 30, T1: 20}
        self.flow_active = True

    def assignment(self) -> set[TP]:
        return {T0, T1}

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}

    def highwater(self, tp: TP) -> int | None:
        return self.fetched.get(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def resume_partitions(self, tps: set[TP]) -> None:
        self.resumed += sorted(tps)
        self._active_partitions |= tps


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _watch() -> tuple[StallWatch, Any, Clock, EngineMetrics]:
    consumer = Consumer()
    app: Any = SimpleNamespace(
        consumer=consumer,
        monitor=SimpleNamespace(tp_end_offsets={}),
        rebalancing=False,
        in_recovery=False,
    )
    agent = AgentProgress("transactions", "t")
    agent.took(0, 44)  # taken past the commit: Faust may hold commits back
    clock, metrics = Clock(), EngineMetrics()
    watch = StallWatch(app, {"t": agent}, metrics, stall_s=30, clock=clock)
    return watch, app, clock, metrics


def test_a_committed_offset_frozen_with_records_waiting_is_logged_counted_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, app, clock, metrics = _watch()
    asyncio.run(watch.check())
    clock.now += 29
    asyncio.run(watch.check())
    assert watch.current() == []  # not yet
    clock.now += 2
    with caplog.at_level(logging.WARNING):
        asyncio.run(watch.check())
    assert [(s.partition, s.waiting) for _, s in watch.current()] == [(0, 20)]  # for /health
    assert app.consumer.seeks == [(T0, 30)]
    assert app.consumer.resumed == [T0]
    assert metrics.stalls == {"t": 1}
    assert 'xsell_partition_stalls_total{topic="t"} 1' in render_prometheus(
        metrics, bundle_version=None, lag={}
    )
    (line,) = caplog.messages
    assert "partition stalled topic=t partition=0 waiting=20 idle_s=31 committed=30" in line
    assert "taken_to=45" in line
    assert '"active": false' in line
    assert '"read_offset": 40' in line
    # Restarted: time starts again.
    clock.now += 5
    asyncio.run(watch.check())
    assert watch.current() == []


def test_a_moving_commit_or_nothing_waiting_is_no_stall() -> None:
    watch, app, clock, _ = _watch()
    for _ in range(10):
        asyncio.run(watch.check())
        clock.now += 10
        app.consumer._committed_offset[T0] += 1  # slow, but moving
    assert watch.current() == []
    app.consumer.ends[T0] = app.consumer._committed_offset[T0]  # read to the end: idle
    clock.now += 100
    asyncio.run(watch.check())
    assert watch.current() == []


def test_rebalances_and_recoveries_do_not_count() -> None:
    watch, app, clock, _ = _watch()
    asyncio.run(watch.check())
    app.in_recovery = True
    clock.now += 100
    asyncio.run(watch.check())
    app.in_recovery = False
    clock.now += 10
    asyncio.run(watch.check())
    assert watch.current() == []  # 10 s since the recovery ended


def test_a_partition_never_committed_counts_from_where_the_topic_begins() -> None:
    watch, app, clock, _ = _watch()
    app.consumer._committed_offset[T1] = None  # Faust keeps offset 0 as None
    asyncio.run(watch.check())
    clock.now += 31
    asyncio.run(watch.check())
    assert {s.partition: s.waiting for _, s in watch.current()} == {0: 20, 1: 20}
    assert (T1, 0) in app.consumer.seeks


def test_the_end_a_fetch_saw_counts_when_the_broker_answers_less() -> None:
    """The embedded broker answers ListOffsets with the start of the last record batch."""
    watch, app, clock, _ = _watch()
    app.consumer.ends[T0] = 25  # below the commit (30)
    asyncio.run(watch.check())
    clock.now += 31
    asyncio.run(watch.check())
    assert watch.current() == []
    app.consumer.fetched[T0] = 50
    asyncio.run(watch.check())
    clock.now += 31
    asyncio.run(watch.check())
    assert {s.partition: s.waiting for _, s in watch.current()} == {0: 20}


def test_a_restart_that_fails_is_logged_and_tried_again_at_the_next_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, app, clock, _ = _watch()

    async def refuse(tp: TP, offset: int) -> None:
        raise ConnectionError("broker away")

    app.consumer.seek = refuse
    with caplog.at_level(logging.WARNING):
        asyncio.run(watch.check())
        clock.now += 31
        asyncio.run(watch.check())
        clock.now += 5
        asyncio.run(watch.check())
    refused = [m for m in caplog.messages if m.startswith("could not restart")]
    assert refused == ["could not restart TP(topic='t', partition=0): broker away"] * 2
