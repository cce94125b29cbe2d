"""The holdings table's RocksDB store: a state reaches disk only with its changelog offset,
and is found in its partition's database whatever event is current."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from faust.types import TP

from streams.compat.rocks_store import HoldingsStore, HoldingsTable

CHANGELOG = "app-holdings-changelog"


def _store(tabledir: Path) -> HoldingsStore:
    app = faust.App("app", store="rocksdb://", tabledir=str(tabledir), Table=HoldingsTable)
    table = app.Table("holdings", default=None, partitions=4, key_type=str, value_type=bytes)
    store = table.data
    assert isinstance(store, HoldingsStore)
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HoldingsStore]:
    store = _store(tmp_path)
    yield store
    _close(store)


def _close(store: HoldingsStore) -> None:
    for db in store._dbs.values():
        db.close()
    store._dbs.clear()


def _key(customer: str) -> bytes:
    return json.dumps(customer).encode()  # as Faust serializes a str key


def test_a_state_is_read_back_before_its_changelog_record_is_acknowledged_but_not_on_disk(
    store: HoldingsStore,
) -> None:
    store["c1"] = b"v1"
    assert store.get("c1") == b"v1"
    assert store._dbs == {}  # no partition's database written, none even opened


def test_an_acknowledged_state_goes_to_disk_with_its_offset(store: HoldingsStore) -> None:
    store["c1"] = b"v1"
    store.persist(TP(CHANGELOG, 2), 7, [(_key("c1"), b"v1")])
    assert store._pending == {}
    assert store._dbs[2].get(_key("c1")) == b"v1"
    assert store.persisted_offset(TP(CHANGELOG, 2)) == 7
    assert store.get("c1") == b"v1"


def test_an_older_acknowledgement_keeps_the_newer_state_waiting(store: HoldingsStore) -> None:
    store["c1"] = b"v1"
    store["c1"] = b"v2"
    store.persist(TP(CHANGELOG, 2), 7, [(_key("c1"), b"v1")])
    assert store.get("c1") == b"v2"
    assert store._dbs[2].get(_key("c1")) == b"v1"
    store.persist(TP(CHANGELOG, 2), 8, [(_key("c1"), b"v2")])
    assert store._pending == {}
    assert store.get("c1") == b"v2"


def test_a_record_batch_goes_to_disk_in_one_write_with_the_offset_it_ends_at(
    store: HoldingsStore,
) -> None:
    store["c1"], store["c2"] = b"v1", b"w1"
    store["c2"] = b"w2"  # changed again after its batch was sent
    store.persist(TP(CHANGELOG, 3), 11, [(_key("c1"), b"v1"), (_key("c2"), b"w1")])
    assert store._pending == {_key("c2"): b"w2"}  # still waits for its own record
    assert [store._dbs[3].get(_key(c)) for c in ("c1", "c2")] == [b"v1", b"w1"]
    assert store.persisted_offset(TP(CHANGELOG, 3)) == 11
    assert (store.get("c1"), store.get("c2")) == (b"v1", b"w2")


def test_keys_of_every_partition_are_found_without_a_current_event(store: HoldingsStore) -> None:
    for partition, customer in enumerate(("c0", "c1", "c2", "c3")):
        store.persist(TP(CHANGELOG, partition), 0, [(_key(customer), customer.encode())])
    store._key_index.clear()
    assert [store.get(c) for c in ("c0", "c1", "c2", "c3", "c4")] == [
        b"c0",
        b"c1",
        b"c2",
        b"c3",
        None,
    ]


def test_after_a_crash_the_database_holds_what_the_changelog_acknowledged_only(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.persist(TP(CHANGELOG, 1), 4, [(_key("c1"), b"v1")])
    store["c1"] = b"v2"  # its record never acknowledged: the worker dies here
    store["c5"] = b"w1"
    _close(store)
    reopened = _store(tmp_path)
    try:
        reopened._db_for_partition(1)
        assert reopened.get("c1") == b"v1"
        assert reopened.get("c5") is None
        assert reopened.persisted_offset(TP(CHANGELOG, 1)) == 4
    finally:
        _close(reopened)


def test_items_are_the_waiting_states_over_the_stored_ones_keys_decoded(
    store: HoldingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_dbs_for_actives", lambda: iter(store._dbs.values()))
    store.persist(TP(CHANGELOG, 0), 0, [(_key("c1"), b"old")])
    store.persist(TP(CHANGELOG, 1), 0, [(_key('客户 "7"'), b"escaped")])
    store["c1"] = b"new"
    store["c2"] = b"waiting"
    assert dict(store.items()) == {"c1": b"new", "c2": b"waiting", '客户 "7"': b"escaped"}
