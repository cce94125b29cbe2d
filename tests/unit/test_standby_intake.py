"""A table standby's fetched records go to its RocksDB store a chunk at a time, as Faust's
recovery would write them one by one, and only outside a recovery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import faust
import pytest
from faust.types import TP

from streams.compat.rocks_store import HoldingsStore, HoldingsTable
from streams.compat.standby_intake import standby_table, write_standby

CHANGELOG = "app-holdings-changelog"
STANDBY = TP(CHANGELOG, 1)


class Record(NamedTuple):  # the fields of aiokafka's ConsumerRecord that are read
    partition: int
    offset: int
    key: bytes
    value: bytes | None


def _key(customer: str) -> bytes:
    return json.dumps(customer).encode()  # as Faust serializes a str key


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    app: Any = faust.App("app", store="rocksdb://", tabledir=str(tmp_path), Table=HoldingsTable)
    table = app.Table("holdings", default=None, partitions=4, key_type=str, value_type=bytes)
    recovery = app.tables.recovery
    recovery.standby_tps.add(STANDBY)
    recovery.tp_to_table[STANDBY] = table
    yield app
    store = table.data
    assert isinstance(store, HoldingsStore)
    for db in store._dbs.values():
        db.close()


def _store(app: Any) -> HoldingsStore:
    store = app.tables.recovery.tp_to_table[STANDBY].data
    assert isinstance(store, HoldingsStore)
    return store


def _write(app: Any, records: list[Record]) -> None:
    table = standby_table(app, STANDBY)
    assert table is not None
    write_standby(app, table, STANDBY, records)


def test_a_chunk_is_written_with_the_offset_it_ends_at_and_becomes_the_recovery_s(app: Any) -> None:
    _write(app, [Record(1, 3, _key("c1"), b"v1"), Record(1, 4, _key("c2"), b"w1")])
    store = _store(app)
    assert [store._dbs[1].get(_key(c)) for c in ("c1", "c2")] == [b"v1", b"w1"]
    assert store.persisted_offset(STANDBY) == 4
    assert app.tables.recovery.standby_offsets[STANDBY] == 4


def test_records_already_read_are_not_written_again_and_a_tombstone_deletes(app: Any) -> None:
    _write(app, [Record(1, 3, _key("c1"), b"v2"), Record(1, 4, _key("c2"), b"w")])
    _write(app, [Record(1, 2, _key("c1"), b"v1"), Record(1, 5, _key("c2"), None)])
    store = _store(app)
    assert store._dbs[1].get(_key("c1")) == b"v2"  # offset 2 is behind the standby's 4
    assert store._dbs[1].get(_key("c2")) is None
    assert store.persisted_offset(STANDBY) == 5


def test_during_a_recovery_or_for_another_partition_faust_s_own_path_takes_them(app: Any) -> None:
    assert standby_table(app, STANDBY) is not None
    assert standby_table(app, TP(CHANGELOG, 2)) is None
    app.tables.recovery.in_recovery = True
    assert standby_table(app, STANDBY) is None


def test_a_table_that_asks_to_see_each_changelog_event_keeps_faust_s_path(app: Any) -> None:
    async def seen(_event: Any) -> None:
        pass

    app.tables.recovery.tp_to_table[STANDBY]._on_changelog_event = seen
    assert standby_table(app, STANDBY) is None
