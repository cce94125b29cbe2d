"""The fetch fix on a stand-in consumer: nothing Faust skips is lost, nothing overtakes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from streams.compat import faust_fixes
from streams.compat.faust_fixes import _getmany_without_loss

A, B = TP("t", 0), TP("t", 1)


class StandIn:
    """The parts of Faust's Consumer that getmany touches."""

    def __init__(self, records: dict[TP, list[Any]], active: set[TP]) -> None:
        self._records, self._active = records, active
        self.app = SimpleNamespace(
            consumer_generation_id=1,
            monitor=SimpleNamespace(track_tp_end_offset=lambda *_: None),
            tables=SimpleNamespace(recovery=SimpleNamespace(in_recovery=False, standby_tps=set())),
        )
        self.should_stop, self.flow_active = False, True
        self._buffered_partitions: set[TP] = set()
        self.scheduler = SimpleNamespace(
            iterate=lambda records: [(tp, r) for tp, rs in records.items() for r in rs]
        )
        self.seeks: list[tuple[TP, int]] = []

    async def _wait_next_records(self, _timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        return self._records, self._active

    def highwater(self, _tp: TP) -> int:
        return 0

    def _to_message(self, tp: TP, record: Any) -> tuple[TP, int]:
        return tp, record.offset

    def assignment(self) -> set[TP]:
        return {A, B}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def _run(consumer: StandIn) -> list[Any]:
    async def collect() -> list[Any]:
        return [message async for _, message in _getmany_without_loss(consumer, 1.0)]

    return asyncio.run(collect())


def _records(tp: TP, *offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


def test_records_of_a_partition_that_is_not_active_are_sought_back_not_dropped() -> None:
    consumer = StandIn({A: _records(A, 5, 6), B: _records(B, 9, 10)}, active={A})
    assert _run(consumer) == [(A, 5), (A, 6)]
    assert consumer.seeks == [(B, 9)]


def test_a_table_standby_s_records_go_to_its_store_whole_and_not_through_faust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[tuple[TP, list[int]]] = []
    monkeypatch.setattr(faust_fixes, "standby_table", lambda _app, tp: "t" if tp == B else None)
    monkeypatch.setattr(
        faust_fixes,
        "write_standby",
        lambda _app, _table, tp, records: written.append((tp, [r.offset for r in records])),
    )
    consumer = StandIn({A: _records(A, 5), B: _records(B, 9, 10)}, active={A, B})
    assert _run(consumer) == [(A, 5)]
    assert written == [(B, [9, 10])]
    paused = StandIn({A: _records(A, 5), B: _records(B, 9, 10)}, active={A})
    assert _run(paused) == [(A, 5)]  # a standby not active now: sought back, as any other
    assert written == [(B, [9, 10])]
    assert paused.seeks == [(B, 9)]


def test_once_a_record_is_skipped_nothing_later_of_its_partition_overtakes_it() -> None:
    consumer = StandIn({A: _records(A, 5, 6, 7)}, active={A})
    gen = iter([True, True, False, True])  # checked on entry, then per record: stops at the 2nd

    class Flickering(StandIn):
        @property  # type: ignore[override]
        def flow_active(self) -> bool:
            return next(gen, True)

        @flow_active.setter
        def flow_active(self, _value: bool) -> None:
            pass

    flickering = Flickering({A: _records(A, 5, 6, 7)}, active={A})
    assert _run(flickering) == [(A, 5)]
    assert flickering.seeks == [(A, 6)]
    assert _run(consumer) == [(A, 5), (A, 6), (A, 7)]
    assert consumer.seeks == []


def test_after_a_new_generation_nothing_is_sought_faust_restarts_from_committed_offsets() -> None:
    consumer = StandIn({A: _records(A, 1), B: _records(B, 2)}, active={A})

    def bump(*_: Any) -> None:
        consumer.app.consumer_generation_id = 2

    consumer.app.monitor.track_tp_end_offset = bump
    assert _run(consumer) == [(A, 1)]
    assert consumer.seeks == []


def test_nothing_is_sought_once_faust_began_seeking_to_the_committed_offsets() -> None:
    """A recovery's seek to the committed offsets started after the fetch: ours would land
    after it and move the partition off its committed offset."""
    consumer = StandIn({A: _records(A, 1), B: _records(B, 882)}, active={A})

    def faust_seeks(*_: Any) -> None:
        consumer._xsell_seeks = 1  # what the wrapped perform_seek counts

    consumer.app.monitor.track_tp_end_offset = faust_seeks
    assert _run(consumer) == [(A, 1)]
    assert consumer.seeks == []


def test_a_partition_with_no_committed_offset_is_sought_back_after_faust_seeks_the_others() -> None:
    """aiokafka's seek to the committed offsets leaves a partition with none committed
    where the fetch left it: past the records skipped. Ours is then the only seek."""
    consumer = StandIn({A: _records(A, 1), B: _records(B, 164, 165)}, active={A})

    def faust_seeks(*_: Any) -> None:  # what the wrapped perform_seek leaves behind
        consumer._xsell_seeks, consumer._xsell_unsought = 1, frozenset({B})

    consumer.app.monitor.track_tp_end_offset = faust_seeks
    assert _run(consumer) == [(A, 1)]
    assert consumer.seeks == [(B, 164)]


def test_a_skip_after_faust_seeks_goes_to_the_start_where_the_seek_sent_the_partition() -> None:
    """The seek sent B (nothing committed, fetched before) to its start, perhaps after this
    fetch: going back only to the skipped record could pass records dropped before it."""
    consumer = StandIn({A: _records(A, 1), B: _records(B, 164, 165)}, active={A})

    def faust_seeks(*_: Any) -> None:
        consumer._xsell_seeks, consumer._xsell_unsought = 1, frozenset({B})
        consumer._xsell_restarted = frozenset({B})

    consumer.app.monitor.track_tp_end_offset = faust_seeks
    assert _run(consumer) == [(A, 1)]
    assert consumer.seeks == [(B, 0)]


C, LOG = TP("t", 2), TP("engine-holdings-changelog", 0)


class Sought(SimpleNamespace):
    """What the wrapped perform_seek touches."""

    def assignment(self) -> set[TP]:
        return {A, B, C, LOG}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def _sought(fetched: set[TP]) -> Sought:
    app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={LOG.topic}))
    return Sought(app=app, _committed_offset={}, _xsell_fetched=fetched, seeks=[])


def test_the_seek_wrapper_sends_fresh_partitions_fetched_before_back_to_their_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B and C have nothing committed (aiokafka leaves them where they are): B was fetched
    before, past records perhaps dropped since, so it starts over; C was not, so its
    position is its first; A has its committed offset; a changelog is recovery's."""

    async def faust(consumer: Any) -> None:  # Faust's perform_seek: B, C had 0 or None
        consumer._committed_offset.update({A: 7, B: None, C: 0})

    consumer = _sought({A, B, LOG})
    monkeypatch.setattr(faust_fixes, "_original_perform_seek", faust)
    asyncio.run(faust_fixes._counted_perform_seek(consumer))
    assert consumer.seeks == [(B, 0)]
    assert consumer._xsell_unsought == frozenset({B, C, LOG})
    assert (consumer._xsell_seeks, consumer._xsell_restarted) == (1, frozenset({B}))


def test_records_fetched_during_the_seek_do_not_send_their_partition_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records handed on while Faust seeks are this generation's: re-reading them would
    only repeat them (the poison-records test counts its dead letters)."""

    async def faust(consumer: Any) -> None:
        consumer._xsell_fetched.add(B)  # a fetch during the seek's round trips
        consumer._committed_offset.update({A: 7, B: None})

    consumer = _sought(set())
    monkeypatch.setattr(faust_fixes, "_original_perform_seek", faust)
    asyncio.run(faust_fixes._counted_perform_seek(consumer))
    assert consumer.seeks == []


def test_getmany_remembers_the_partitions_it_fetched() -> None:
    consumer = StandIn({A: _records(A, 1), B: _records(B, 2)}, active={A, B})
    _run(consumer)
    assert consumer._xsell_fetched == {A, B}  # type: ignore[attr-defined]


def test_flow_control_clears_the_queues_only_when_resuming_from_a_suspension() -> None:
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    from streams.compat.faust_fixes import install_faust_fixes

    install_faust_fixes()

    async def scenario() -> list[int]:
        flow = FlowControlEvent(initially_suspended=True)
        queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        sizes = []
        queue.put_nowait("stale")  # queued before a rebalance
        flow.resume()  # after the suspension: stale events go
        sizes.append(queue.qsize())
        queue.put_nowait("fresh")
        flow.resume()  # already running (end of recovery): nothing may go
        sizes.append(queue.qsize())
        flow.suspend()
        flow.resume()
        sizes.append(queue.qsize())
        return sizes

    assert asyncio.run(scenario()) == [0, 1, 0]


def test_no_commit_goes_past_a_record_at_the_commit_that_was_never_acknowledged() -> None:
    """Faust's own check lets one record be missing right after the commit."""
    from intervaltree import IntervalTree

    from streams.compat.faust_fixes import install_faust_fixes

    install_faust_fixes()
    consumer: Any = SimpleNamespace(
        _acked={A: [31, 32, 33]},
        _acked_index={A: {31, 32, 33}},
        _committed_offset={A: 30},  # the next offset to read
        _gap={A: IntervalTree()},
    )
    new_offset = Consumer._new_offset
    assert new_offset(consumer, A) is None  # 30 is missing: hold back
    consumer._acked[A] = [30, 31, 32, 33]
    assert new_offset(consumer, A) == 34
    # A gap Faust recorded (offsets it knows hold no record) counts as acknowledged.
    consumer._acked[A], consumer._committed_offset[A] = [36, 37], 34
    consumer._gap[A].addi(34, 36)
    assert new_offset(consumer, A) == 38


def test_an_offset_acknowledged_twice_does_not_hold_the_commit_back() -> None:
    """A gap recorded after a seek covers the record that ended it, also acknowledged:
    Faust's run of consecutive offsets stopped at each repeat (commits crawled)."""
    from intervaltree import IntervalTree

    from streams.compat.faust_fixes import install_faust_fixes

    install_faust_fixes()
    acked = list(range(30, 40))
    consumer: Any = SimpleNamespace(
        _acked={A: [*acked, 33, 36]},  # 33 and 36 twice
        _acked_index={A: set(acked)},
        _committed_offset={A: 30},
        _gap={A: IntervalTree()},
    )
    consumer._gap[A].addi(38, 41)  # covers 38 and 39 (acknowledged too) and 40
    assert Consumer._new_offset(consumer, A) == 41
    assert consumer._acked[A] == []
    assert not consumer._gap[A]
