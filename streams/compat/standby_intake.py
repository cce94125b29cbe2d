"""Standby changelog records written to RocksDB a fetched chunk at a time, below Faust's
per-record path.

A table standby keeps a copy of the partitions other workers own by reading their
changelogs, so that a takeover reads only the changelog's tail. Faust hands every such
record through its fetch loop, the conductor, an Event and the recovery's queue, then
writes them in buffers (`apply_changelog_batch`): in a group of two workers, each used
about a fifth more CPU than without a standby. Once a recovery has ended, `getmany`
(faust_fixes.py) gives a standby partition's fetched records here: the records past the
recovery's offset for the partition are written in one RocksDB batch with the last
offset, as Faust's buffer would be, and that offset becomes the recovery's. During a
recovery, with the memory store, or for a table that asks to see each changelog event
(`on_changelog_event`; ours does not), Faust's own path takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from faust.types import TP

from streams.compat.rocks_store import HoldingsStore


class _Message(NamedTuple):
    """What `apply_changelog_batch` reads of a changelog event's message."""

    tp: TP
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Event(NamedTuple):
    message: _Message


def standby_table(app: Any, tp: TP) -> Any | None:
    """The table whose RocksDB store takes `tp`'s records here: None when `tp` is not a
    standby partition of one, or a recovery is going on (Faust's own path then)."""
    recovery = app.tables.recovery
    if recovery.in_recovery or tp not in recovery.standby_tps:
        return None
    table = recovery.tp_to_table.get(tp)
    if table is None or table._on_changelog_event or not isinstance(table.data, HoldingsStore):
        return None
    return table


def write_standby(app: Any, table: Any, tp: TP, records: Sequence[Any]) -> None:
    """Write a standby partition's fetched records (aiokafka ConsumerRecords, in offset
    order) past the recovery's offset for it to `table`'s store, with the last offset."""
    recovery = app.tables.recovery
    seen = recovery.standby_offsets.get(tp)
    fresh = [r for r in records if seen is None or r.offset > seen]
    if fresh:
        table.apply_changelog_batch(
            [_Event(_Message(tp, r.partition, r.offset, r.key, r.value)) for r in fresh]
        )
        recovery.standby_offsets[tp] = fresh[-1].offset
