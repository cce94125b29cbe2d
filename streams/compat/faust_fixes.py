"""Five fixes for faust-streaming 0.15 (and mode), about records lost without a trace and
commits that stall.

1. Records fetched but not handed on. `Consumer.getmany` takes a batch from aiokafka
   (which has already moved its position past it) and then skips some: those of a
   partition not in its set of active partitions at that instant (paused for table
   recovery, or caught while the set is rebuilt, when the consumer thread briefly sees it
   empty and fetches every partition), and the rest of the batch when flow stops or the
   generation changes. A skipped record is never fetched again. Measured on the embedded
   broker: a worker that had to read 40 snapshot rows missed one in 4 of 36 runs and all
   40 in 2. Our `getmany` hands on the same records in the same order, but remembers per
   partition the first one it skipped (skipping the rest of that partition in the batch,
   so nothing overtakes it) and seeks back there. After a rebalance Faust seeks to the
   committed offsets itself, so then nothing is done; nor when Faust started seeking to
   the committed offsets (at the end of a table recovery) after the fetch: our seek,
   which runs at once, would land after that one and move the partition off its
   committed offset, and Faust takes a jump forward for a gap in a compacted topic and
   acknowledges the records in between (seen: one customer's debit lost in a kill -9
   test, after "re-reading … from offset 882" during a recovery's seek). A source
   partition with no offset committed yet is another matter: aiokafka's seek to the
   committed offsets leaves it where it is, past records fetched and then dropped
   (skipped here, or queued and cleared at a rebalance; seen: 22–24 of 60 customers off
   in 2 of 11 two-worker kill -9 trials, a worker's first commit not yet made when the
   second joined). So after Faust's seek, such a partition goes back to its start if
   records of it were fetched before that seek began (those fetched since are this
   generation's, handed on); and a skip seen after the seek is sought back to the
   start too when the seek sent the partition there. Re-reading costs duplicates
   only: nothing of it was committed, and state updates are idempotent.
   The records of a batch intake's topic (batch_intake.py) go to it a partition's whole
   chunk at a time, under the same checks, and so do a table standby's to its store
   (standby_intake.py).

2. Commits before the table's changelog is written. Before committing offsets, and when
   stopping, Faust flushes its producer buffer (where table writes wait), but gives up as
   soon as no message went out for 0.1 s, and does not count the message being sent.
   Under load the commit (or the shutdown) then goes ahead with changelog writes still
   buffered, and a crash right after loses updates whose events will not be read again
   (seen: a customer's snapshot state missing after a clean stop and three kill -9).
   Our flush waits until the buffer is empty and nothing is in flight, and first for the
   table writes a worker still holds back (`flush_waits_for`: see streams/processing/outflow.py).

3. Events dropped from the agents' queues when a worker becomes ready. Faust's flow
   control clears every stream queue on each `resume()`, suspended or not. At the end of
   table recovery Faust resumes the stream partitions, seeks them (an await, during which
   the fetcher already delivers their records into the queues) and then resumes flow
   control again, which empties the queues: those records were read and are never read
   again (seen: one snapshot row of 40 delivered to its agent's queue, then gone). Queues
   must be cleared when flow resumes after a rebalance suspended it (their events may
   belong to partitions now owned by another worker), so ours clears only then. An event
   delivered twice instead is harmless: state updates are idempotent.

4. Commits past a record never acknowledged. Faust keeps a partition's committed offset
   as the next offset to read, but its check that the acknowledged offsets start right
   after the commit allows one missing: with the record at the committed offset never
   acknowledged and the next ones acknowledged, it commits past that record, which is
   then never read again. Ours holds the commit back until that record is acknowledged;
   if it never is, the partition's commit stands still and the stall watch
   (streams/stall_watch.py) logs it and sends the partition back to its committed offset.
   Our input topics have no gaps in their offsets (no compaction, no transactions), and
   Faust's own gap records still count as acknowledged.

5. Commits that crawl. Faust commits the first run of consecutive acknowledged offsets,
   and its list of them can hold an offset twice: a gap it records after a seek also
   covers the record that ended it, which is acknowledged as well, and records read
   again after fix 1's seek are acknowledged again. A repeat breaks the run, so each
   commit moved one or two offsets past the last: after a rebalance, a worker that had
   read all of a partition took minutes to commit it (seen in the kill -9 test: commits
   of 2 offsets every 5 s, the partition "stuck" past the test's 2 minutes). Ours drops
   the repeats before looking for the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message
from faust.types.transports import ProducerBufferT
from faust.types.tuples import FutureMessage
from faust.utils.functional import consecutive_numbers
from mode.utils.queues import FlowControlEvent

from streams.compat.batch_intake import intake_of
from streams.compat.standby_intake import standby_table, write_standby

log = logging.getLogger(__name__)
_installed = False


async def _getmany_without_loss(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
    seeks_before = getattr(self, "_xsell_seeks", 0)
    records, active_partitions = await self._wait_next_records(timeout)
    generation_id = self.app.consumer_generation_id
    if records is None or self.should_stop:
        return
    if not hasattr(self, "_xsell_fetched"):
        self._xsell_fetched = set()
    self._xsell_fetched.update(records)  # the partitions our perform_seek may send back
    if not self.flow_active:  # Faust's own handling: back to the committed offsets
        try:
            await self.perform_seek()
        except Exception as exc:  # as Faust: a failed seek is retried on the next call
            log.warning("seek to committed offsets failed: %s", exc)
        return
    skipped: dict[TP, int] = {}

    def taken(tp: TP) -> bool:
        return (
            self.flow_active
            and self.app.consumer_generation_id == generation_id
            and (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            )
        )

    records = dict(records)  # what the intakes below take is left out of Faust's path
    intake = intake_of(self.app)
    if intake is not None:  # its topic's records go to it whole, partition by partition
        for tp in [tp for tp in records if intake.takes(tp)]:
            chunk = records.pop(tp)
            if not chunk:
                continue
            if taken(tp):
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                intake.put(self, tp, chunk, generation_id)
            else:
                skipped[tp] = chunk[0].offset
    for tp in [tp for tp, chunk in records.items() if chunk]:
        table = standby_table(self.app, tp)  # a standby's records go to its store whole
        if table is not None and taken(tp):
            write_standby(self.app, table, tp, records.pop(tp))
    for tp, record in self.scheduler.iterate(records):
        if tp in skipped:
            continue
        if not taken(tp):
            skipped[tp] = record.offset
            continue
        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        yield tp, self._to_message(tp, record)
    if not skipped or self.app.consumer_generation_id != generation_id:
        return  # Faust goes back to the committed offsets after a rebalance
    if getattr(self, "_xsell_seeks", 0) != seeks_before:
        # Faust sought its partitions to their committed offsets, all but those with none
        # committed yet (aiokafka seeks only to an offset > 0): those stay where the fetch
        # left them, past what it skipped, or where ours sent them (their start).
        unsought: frozenset[TP] = getattr(self, "_xsell_unsought", frozenset())
        restarted: frozenset[TP] = getattr(self, "_xsell_restarted", frozenset())
        skipped = {
            tp: 0 if tp in restarted else offset for tp, offset in skipped.items() if tp in unsought
        }
    assigned = self.assignment()
    for tp, offset in skipped.items():
        if tp in assigned:
            log.info("re-reading %s from offset %s: fetched while not active", tp, offset)
            await self.seek(tp, offset)


_original_perform_seek = Consumer.perform_seek


async def _counted_perform_seek(self: Any) -> None:
    self._xsell_seeks = getattr(self, "_xsell_seeks", 0) + 1  # before Faust's seek is queued
    self._xsell_unsought = self._xsell_restarted = frozenset()  # not known before the seek
    fetched_before = frozenset(getattr(self, "_xsell_fetched", ()))
    await _original_perform_seek(self)
    # Faust keeps None as the committed offset of a partition aiokafka did not seek.
    unsought = frozenset(tp for tp in self.assignment() if not self._committed_offset.get(tp))
    changelogs = self.app.tables.changelog_topics
    restarted = frozenset(tp for tp in unsought & fetched_before if tp.topic not in changelogs)
    for tp in restarted:
        log.info("re-reading %s from its start: fetched before, nothing committed", tp)
        await self.seek(tp, 0)
    self._xsell_unsought, self._xsell_restarted = unsought, restarted


_original_send_pending = ProducerBuffer._send_pending


async def _counted_send_pending(self: Any, fut: FutureMessage) -> None:
    self._xsell_in_flight = getattr(self, "_xsell_in_flight", 0) + 1
    try:
        await _original_send_pending(self, fut)
    finally:
        self._xsell_in_flight -= 1


# Per producer buffer, what its flush waits for first: the worker's pending table writes
# (`Outflow.settled`), which are not in the buffer yet but must reach it before a commit.
_flush_barriers: weakref.WeakKeyDictionary[ProducerBufferT, Callable[[], Awaitable[None]]] = (
    weakref.WeakKeyDictionary()
)


def flush_waits_for(buffer: ProducerBufferT, barrier: Callable[[], Awaitable[None]]) -> None:
    """Make the buffer's flush (before every commit, and at shutdown) await `barrier()`
    first; a failure there fails the commit, so nothing is committed past a lost write."""
    _flush_barriers[buffer] = barrier


async def _flush_everything(self: Any) -> None:
    barrier = _flush_barriers.get(self)
    if barrier is not None:
        await barrier()
    loop = asyncio.get_running_loop()
    warn_at = loop.time() + 10.0  # a flush this long means the broker is slow or away
    while self.size or getattr(self, "_xsell_in_flight", 0):
        if self.state != "running" and self.size:
            msg = "Cannot flush: Producer not Running"
            raise RuntimeError(msg)
        self.message_sent.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)
        if loop.time() >= warn_at:
            log.warning("still flushing the producer buffer: %s message(s) left", self.size)
            warn_at += 10.0


_original_add_gap = Consumer._add_gap


async def _logged_add_gap(self: Any, tp: TP, offset_from: int, offset_to: int) -> None:
    # Our input topics have no holes: a jump in the offsets Faust hands on means records
    # it will count as acknowledged without anyone taking them. Said, to be traced.
    log.warning(
        "offsets %s..%s of %s skipped in delivery; Faust counts them as acknowledged",
        offset_from,
        offset_to - 1,
        tp,
    )
    await _original_add_gap(self, tp, offset_from, offset_to)


def _new_offset_from_unique_offsets(self: Any, tp: TP) -> int | None:
    """Faust's `_new_offset` with fixes 4 and 5: the next offset to commit, or None."""
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    gaps = self._gap[tp]
    if gaps:  # as Faust: offsets it knows hold no record count as acknowledged
        done = max(acked) + 1  # the gaps below are taken in whole
        for interval in gaps.overlap(0, done - 1):
            acked.extend(range(interval.begin, interval.end))
            done = max(done, interval.end)
        gaps.chop(0, done)
    acked[:] = sorted(set(acked))  # fix 5
    committed = self._committed_offset.get(tp)
    if committed and acked[0] > committed:  # fix 4; None or 0: nothing committed yet
        return None
    batch = next(consecutive_numbers(acked))
    del acked[: len(batch)]
    self._acked_index[tp].difference_update(batch)
    return int(batch[-1]) + 1


def _resume_clearing_after_suspend(self: FlowControlEvent) -> None:
    was_suspended = not self.is_active()
    self._suspend.clear()
    self._resume.set()
    if was_suspended:
        self.clear()


def install_faust_fixes() -> None:
    """Apply the five fixes (see the module's text). Idempotent."""
    global _installed  # noqa: PLW0603 - one patch per process
    if not _installed:
        Consumer.getmany = _getmany_without_loss  # type: ignore[method-assign]
        Consumer.perform_seek = _counted_perform_seek  # type: ignore[method-assign]
        ProducerBuffer._send_pending = _counted_send_pending  # type: ignore[method-assign]
        ProducerBuffer.flush = _flush_everything  # type: ignore[method-assign]
        FlowControlEvent.resume = _resume_clearing_after_suspend  # type: ignore[method-assign]
        Consumer._new_offset = _new_offset_from_unique_offsets  # type: ignore[method-assign]
        Consumer._add_gap = _logged_add_gap  # type: ignore[method-assign]
        _installed = True
