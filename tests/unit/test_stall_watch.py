"""The stall watch on a stand-in for Faust's app: what it restarts, logs and counts."""

from __future__ import annotations

import asyncio
import logging
import time
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
        self.ends = {T0: 50, T1: 20}
        self.fetched: dict[TP, int] = {}
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

    async def highwaters(self, *tps: TP) -> dict[TP, int]:  # asked of the broker
        return {tp: self.ends[tp] for tp in tps}

    def highwater(self, tp: TP) -> int | None:  # seen by the last fetch
        return self.fetched.get(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def resume_partitions(self, tps: set[TP]) -> None:
        self.resumed += sorted(tps)
        self._active_partitions |= tps


def _app() -> Any:
    consumer = Consumer()
    monitor = SimpleNamespace(tp_end_offsets={})
    return SimpleNamespace(consumer=consumer, monitor=monitor, rebalancing=False, in_recovery=False)


def test_a_stalled_partition_is_logged_counted_and_sent_back_to_its_committed_offset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, metrics = _app(), EngineMetrics()
    agent = AgentProgress("transactions", "t")
    agent.took(0, 40)
    agent.took(1, 19)
    agent.taken_at[0] = time.monotonic() - 45  # T1 took its last record just now
    watch = StallWatch(app, {"t": agent}, metrics, stall_s=30)
    with caplog.at_level(logging.WARNING):
        asyncio.run(watch.check())
    assert app.consumer.seeks == [(T0, 30)]
    assert app.consumer.resumed == [T0]
    assert metrics.stalls == {"t": 1}
    assert 'xsell_partition_stalls_total{topic="t"} 1' in render_prometheus(
        metrics, bundle_version=None, lag={}
    )
    (line,) = caplog.messages
    assert "partition stalled topic=t partition=0 waiting=9" in line
    assert '"active": false' in line
    assert '"read_offset": 40' in line
    assert [s.partition for _, s in watch.current()] == [0]  # /health: what the check found
    # Restarted: it counts from now, so the next check leaves it alone.
    asyncio.run(watch.check())
    assert watch.current() == []


def test_rebalances_and_recoveries_do_not_count_as_idle_time() -> None:
    app = _app()
    agent = AgentProgress("transactions", "t", since=time.monotonic() - 100)
    watch = StallWatch(app, {"t": agent}, EngineMetrics(), stall_s=30)
    app.in_recovery = True
    asyncio.run(watch.check())
    assert watch.current() == []
    app.in_recovery = False
    asyncio.run(watch.check())
    assert watch.current() == []  # idle since the recovery ended only: not yet


def test_a_partition_never_committed_counts_from_where_the_topic_begins() -> None:
    app = _app()
    app.consumer._committed_offset[T1] = None  # Faust keeps offset 0 as None
    agent = AgentProgress("transactions", "t", since=time.monotonic() - 100)
    watch = StallWatch(app, {"t": agent}, EngineMetrics(), stall_s=30)
    asyncio.run(watch.check())
    assert {s.partition: s.waiting for _, s in watch.current()} == {0: 20, 1: 20}
    assert (T1, 0) in app.consumer.seeks


def test_a_restart_that_fails_is_logged_and_tried_again_at_the_next_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()

    async def refuse(tp: TP, offset: int) -> None:
        raise ConnectionError("broker away")

    app.consumer.seek = refuse
    agent = AgentProgress("transactions", "t", since=time.monotonic() - 100)
    watch = StallWatch(app, {"t": agent}, EngineMetrics(), stall_s=30)
    with caplog.at_level(logging.WARNING):
        asyncio.run(watch.check())
        asyncio.run(watch.check())
    refused = [m for m in caplog.messages if m.startswith("could not restart")]
    assert refused[-1] == "could not restart TP(topic='t', partition=0): broker away"
    assert len(refused) == 2  # still stalled at the next check: tried again


def test_the_end_a_fetch_saw_counts_when_the_broker_answers_less() -> None:
    """The embedded broker answers ListOffsets with the start of the last record batch."""
    app = _app()
    app.consumer.ends[T0] = 25  # the broker's answer, below the commit (30)
    agent = AgentProgress("transactions", "t", since=time.monotonic() - 100)
    watch = StallWatch(app, {"t": agent}, EngineMetrics(), stall_s=30)
    asyncio.run(watch.check())
    assert watch.current() == []
    app.consumer.fetched[T0] = 50
    agent.since = time.monotonic() - 100
    asyncio.run(watch.check())
    assert {s.partition: s.waiting for _, s in watch.current()} == {0: 20}
