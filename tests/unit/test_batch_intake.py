"""The batch intake on a stand-in consumer: whole chunks in, offsets acked as Faust commits."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP
from intervaltree import IntervalTree

from streams.compat.batch_intake import BatchIntake, Chunk
from streams.compat.faust_fixes import _getmany_without_loss, _new_offset_from_unique_offsets

T0, T1, OTHER = TP("tx", 0), TP("tx", 1), TP("profiles", 0)


class StandInConsumer:
    """The parts of Faust's Consumer that getmany, the intake and `_new_offset` touch."""

    def __init__(self, app: StandInApp) -> None:
        self.app = app
        self.should_stop, self.flow_active = False, True
        self._records: dict[TP, list[Any]] = {}
        self._active: set[TP] = {T0, T1, OTHER}
        self._buffered_partitions: set[TP] = set()
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._n_acked = 0
        self._unacked_messages: weakref.WeakSet[Any] = weakref.WeakSet()
        self._waiting_for_ack = None
        self.scheduler = SimpleNamespace(
            iterate=lambda records: [(tp, r) for tp, rs in records.items() for r in rs]
        )
        self.seeks: list[tuple[TP, int]] = []
        self.full: list[TP] = []
        self.dropped: list[TP] = []

    async def _wait_next_records(self, _timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        records, self._records = self._records, {}
        return records, self._active

    def highwater(self, _tp: TP) -> int:
        return 0

    def _to_message(self, tp: TP, record: Any) -> tuple[TP, int]:
        return tp, record.offset

    def assignment(self) -> set[TP]:
        return {T0, T1, OTHER}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def on_buffer_full(self, tp: TP) -> None:
        self.full.append(tp)

    def on_buffer_drop(self, tp: TP) -> None:
        self.dropped.append(tp)

    def commit_offset(self, tp: TP) -> int | None:
        """The offset the worker's commit would take for tp now (Faust's, fixes 4 and 5)."""
        return _new_offset_from_unique_offsets(self, tp)


class StandInApp:
    def __init__(self) -> None:
        self.consumer_generation_id = 1
        self.monitor = SimpleNamespace(track_tp_end_offset=lambda *_: None)
        self.conf = SimpleNamespace(stream_buffer_maxsize=8)
        self.flow_control = SimpleNamespace(manage_queue=lambda _queue: None)
        self.tables = SimpleNamespace(
            recovery=SimpleNamespace(in_recovery=False, standby_tps=set())
        )
        self.consumer = StandInConsumer(self)


def _records(tp: TP, *offsets: int) -> list[Any]:
    return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o) for o in offsets]


def _fetch(app: StandInApp, records: dict[TP, list[Any]]) -> list[Any]:
    app.consumer._records = records

    async def collect() -> list[Any]:
        return [m async for _, m in _getmany_without_loss(app.consumer, 1.0)]

    return asyncio.run(collect())


def _take(intake: BatchIntake) -> list[Chunk]:
    async def first() -> list[Chunk]:
        batches = intake.batches()
        return await anext(batches)

    return asyncio.run(first())


def _intake(app: StandInApp, max_records: int = 100) -> BatchIntake:
    return BatchIntake(app, "tx", max_records=max_records)  # type: ignore[arg-type]


def test_its_topic_goes_to_the_intake_a_partition_at_a_time_and_the_rest_to_faust() -> None:
    app = StandInApp()
    intake = _intake(app)
    messages = _fetch(
        app, {T0: _records(T0, 0, 1, 2), OTHER: _records(OTHER, 7), T1: _records(T1, 4)}
    )
    assert messages == [(OTHER, 7)]
    chunks = _take(intake)
    assert [(c.tp, [r.offset for r in c.records]) for c in chunks] == [(T0, [0, 1, 2]), (T1, [4])]
    assert app.consumer._read_offset[T0] == 2


def test_a_partition_that_is_not_active_is_sought_back_not_queued() -> None:
    app = StandInApp()
    intake = _intake(app)
    app.consumer._active = {T0}
    _fetch(app, {T0: _records(T0, 0, 1), T1: _records(T1, 5, 6)})
    assert app.consumer.seeks == [(T1, 5)]
    assert [c.tp for c in _take(intake)] == [T0]


def test_acknowledged_chunks_commit_through_their_last_offset_gaps_included() -> None:
    app = StandInApp()
    intake = _intake(app)
    _fetch(app, {T0: _records(T0, 0, 1, 2)})
    first = _take(intake)
    _fetch(app, {T0: _records(T0, 6, 7)})  # 3..5 compacted away
    second = _take(intake)
    assert app.consumer.commit_offset(T0) is None  # nothing acknowledged yet
    intake.done(first)
    intake.done(second)
    assert app.consumer.commit_offset(T0) == 8


def test_no_commit_past_an_unread_committed_offset_and_records_read_again_count_once() -> None:
    app = StandInApp()
    intake = _intake(app)
    app.consumer._committed_offset[T0] = 10
    _fetch(app, {T0: _records(T0, 11, 12)})  # 10 never handed on
    intake.done(_take(intake))
    assert app.consumer.commit_offset(T0) is None  # fix 4: Faust's check would take 13
    app.consumer._read_offset[T0] = 10  # sought back to the commit: 10..12 read again
    _fetch(app, {T0: _records(T0, 10, 11, 12)})
    intake.done(_take(intake))
    assert app.consumer._acked[T0] == [11, 12, 10]  # each offset once
    assert app.consumer.commit_offset(T0) == 13


def test_a_chunk_in_flight_is_waited_for_by_faust_and_released_after() -> None:
    app = StandInApp()
    intake = _intake(app)
    _fetch(app, {T0: _records(T0, 0, 1)})

    async def scenario() -> tuple[int, int]:
        batches = intake.batches()
        chunks = await anext(batches)
        during = len(app.consumer._unacked_messages)
        intake.done(chunks)
        await batches.aclose()  # as when the task asks for the next batch, or stops
        return during, len(app.consumer._unacked_messages)

    assert asyncio.run(scenario()) == (1, 0)


def test_a_rebalance_drops_what_is_queued_and_what_was_taken_is_not_acknowledged() -> None:
    app = StandInApp()
    intake = _intake(app)
    _fetch(app, {T0: _records(T0, 0, 1)})
    taken = _take(intake)
    _fetch(app, {T0: _records(T0, 2, 3)})
    intake.clear()  # Faust's flow control, on revocation
    app.consumer_generation_id = 2
    intake.done(taken)
    assert app.consumer.commit_offset(T0) is None
    _fetch(app, {T1: _records(T1, 9)})
    assert [c.tp for c in _take(intake)] == [T1]


def test_a_chunk_of_a_passed_generation_is_left_out() -> None:
    app = StandInApp()
    intake = _intake(app)
    _fetch(app, {T0: _records(T0, 0)})
    app.consumer_generation_id = 2
    _fetch(app, {T1: _records(T1, 3)})
    assert [c.tp for c in _take(intake)] == [T1]


def test_fetching_stops_above_the_high_water_and_resumes_once_drained() -> None:
    app = StandInApp()
    intake = _intake(app, max_records=2)  # high water: max(4 * 2, 8) = 8 records
    _fetch(app, {TopicPartition("tx", 0): _records(T0, *range(9))})  # as aiokafka keys them
    assert app.consumer.full == [T0]
    assert isinstance(app.consumer.full[0], TP)  # Faust asserts its own type in its sets

    async def drain(batches: int) -> None:
        taking = intake.batches()
        for _ in range(batches):
            await anext(taking)

    asyncio.run(drain(3))  # 3 records left: above a quarter of the high water
    assert app.consumer.dropped == []
    asyncio.run(drain(1))
    assert app.consumer.dropped == [T0]


def test_a_batch_holds_at_most_max_records_a_large_chunk_split_in_order() -> None:
    app = StandInApp()
    intake = _intake(app, max_records=3)
    _fetch(app, {T0: _records(T0, *range(5)), T1: _records(T1, 7)})

    async def two() -> list[list[tuple[int, list[int]]]]:
        batches = intake.batches()
        return [
            [(c.tp.partition, [r.offset for r in c.records]) for c in await anext(batches)]
            for _ in range(2)
        ]

    assert asyncio.run(two()) == [[(0, [0, 1, 2])], [(0, [3, 4]), (1, [7])]]
