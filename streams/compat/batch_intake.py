"""One topic's records taken below Faust's per-event stream: a fetched batch per partition.

Faust hands every record through its fetch loop (a task pair per record to race it
against flow control), the conductor, an Event and a stream queue: an agent with an
empty body tops out near 18k records/s on the development machine. The intake takes its
topic's records straight from the consumer's `getmany` (ours, in faust_fixes.py, which
checks each partition exactly as for every other topic: active, flow on, same
generation; else skipped and sought back), one chunk per partition per fetch, and
acknowledges a chunk's offsets in one step once it is processed. Faust's own commit,
with what runs before it (the flush barrier, the changelog writes), stays the only one;
Faust still subscribes the topic, assigns, pauses, recovers and seeks it.

Rebalances: queued chunks are dropped when Faust clears its stream queues (the intake is
one of its flow control's queues) and when their generation has passed; Faust then seeks
to the committed offsets. A chunk being processed counts as an unacknowledged message, so
Faust's `wait_empty` waits for it before the revocation's commit hands partitions over.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger(__name__)


@dataclass(eq=False)  # hashed by identity: Faust keeps in-flight chunks in a WeakSet
class Chunk:
    """Records of one partition from one fetch, and the offsets acknowledging it covers."""

    tp: TP
    records: Sequence[Any]  # aiokafka ConsumerRecords, in offset order
    first: int  # from the partition's last read offset: a gap before records[0] is covered
    generation: int
    # Read by Faust's wait_empty, which takes a chunk in flight for a message.
    acked: bool = False
    refcount: int = 1

    @property
    def last(self) -> int:
        return int(self.records[-1].offset)


class BatchIntake:
    """Chunks of `topic`'s partitions, queued by `getmany` and taken by one task."""

    def __init__(self, app: faust.App, topic: str, *, max_records: int = 500) -> None:
        self.app, self.topic, self.max_records = app, topic, max_records
        self._queue: deque[Chunk] = deque()
        self._queued = 0  # records in the queue
        self._ready = asyncio.Event()
        self._full: set[TP] = set()  # partitions whose fetching stopped: too much queued
        # Above this many queued records fetching of the partition stops, below a quarter
        # of it, resumes (as Faust does for its stream buffers).
        self.high_water = max(4 * max_records, app.conf.stream_buffer_maxsize)
        app.flow_control.manage_queue(self)  # type: ignore[arg-type]
        _intakes[app] = self

    def takes(self, tp: TP) -> bool:
        return tp.topic == self.topic

    def put(self, consumer: Any, tp: TP, records: Sequence[Any], generation: int) -> None:
        """Queue a fetched chunk (from `getmany`, once it has checked the partition)."""
        tp = TP(tp.topic, tp.partition)  # aiokafka's TopicPartition: Faust asserts its own
        read = consumer._read_offset.get(tp)
        if read is not None and records[0].offset < read:  # as Faust: nothing before the read
            records = [r for r in records if r.offset >= read]
            if not records:
                return
        first = records[0].offset if read is None else min(read, records[0].offset)
        if read is not None and records[0].offset > read + 1:  # as faust_fixes' _add_gap
            log.warning(
                "offsets %s..%s of %s skipped in delivery; Faust counts them as acknowledged",
                read + 1,
                records[0].offset - 1,
                tp,
            )
        consumer._read_offset[tp] = records[-1].offset
        self._queue.append(Chunk(tp, records, first, generation))
        self._queued += len(records)
        self._ready.set()
        if self._queued > self.high_water and tp not in self._full:
            consumer.on_buffer_full(tp)
            self._full.add(tp)

    def clear(self) -> None:
        """Drop what is queued (Faust's flow control calls it when partitions are revoked)."""
        self._queue.clear()
        self._queued = 0
        self._ready.clear()
        consumer: Any = self.app.consumer  # Faust's private state: see the module's text
        consumer._buffered_partitions.difference_update(self._full)
        self._full.clear()

    async def batches(self) -> AsyncIterator[list[Chunk]]:
        """Whatever is queued, up to `max_records` records, as soon as there is any.

        The caller processes a batch, then hands it to `done`. Chunks of a generation that
        has passed are left out: their partitions are sought back to the committed offsets.
        """
        consumer: Any = self.app.consumer
        while True:
            await self._ready.wait()
            taken: list[Chunk] = []
            count = 0
            while self._queue and count < self.max_records:
                chunk = self._queue.popleft()
                room = self.max_records - count
                if len(chunk.records) > room:  # a fetch can hold a whole partition: split it
                    rest = chunk.records[room:]
                    self._queue.appendleft(Chunk(chunk.tp, rest, rest[0].offset, chunk.generation))
                    chunk = Chunk(chunk.tp, chunk.records[:room], chunk.first, chunk.generation)
                count += len(chunk.records)
                if chunk.generation == self.app.consumer_generation_id:
                    taken.append(chunk)
            self._queued -= count
            if not self._queue:
                self._ready.clear()
            if self._full and self._queued < self.high_water // 4:
                for tp in self._full:
                    consumer.on_buffer_drop(tp)
                self._full.clear()
            if taken:
                consumer._unacked_messages.update(taken)
                try:
                    yield taken
                finally:  # processed or given up (cancelled): Faust waits no longer
                    for chunk in taken:
                        chunk.acked = True
                    consumer._unacked_messages.difference_update(taken)
                    notify(consumer._waiting_for_ack)

    def done(self, chunks: Sequence[Chunk]) -> None:
        """Acknowledge the chunks' offsets, as Faust's `Consumer.ack` does one by one; not
        when a rebalance came in between (the offsets may be another worker's by now)."""
        consumer: Any = self.app.consumer
        if any(c.generation != self.app.consumer_generation_id for c in chunks):
            return
        with ack_lock:
            for chunk in chunks:
                committed = consumer._committed_offset.get(chunk.tp)
                start = chunk.first if committed is None else max(chunk.first, committed)
                index = consumer._acked_index[chunk.tp]
                new = [o for o in range(start, chunk.last + 1) if o not in index]
                index.update(new)
                consumer._acked[chunk.tp].extend(new)
                consumer._n_acked += len(new)


# Per app, its intake: `getmany` (faust_fixes.py) hands it the records of its topic.
_intakes: weakref.WeakKeyDictionary[faust.App, BatchIntake] = weakref.WeakKeyDictionary()


def intake_of(app: Any) -> BatchIntake | None:
    try:
        return _intakes.get(app)
    except TypeError:  # an app that cannot be weakly referenced (a test's stand-in) has none
        return None
