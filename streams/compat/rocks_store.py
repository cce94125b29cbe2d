"""The holdings table in RocksDB: faust-streaming 0.15's rocksdb store, changed in two places
where it would misplace or lose a state.

1. A key's partition, not the current event's. Faust's store reads and writes the RocksDB
   of `current_event()`'s partition. A batch holds records of several partitions, and the
   outflow stores a batch's states after it (streams/processing/outflow.py): a state would
   be written into, or looked up in, another partition's database. Here a state is looked
   up in every assigned partition's database (keys are customers, each in one partition;
   RocksDB's bloom filters make a miss cheap) and written to the partition of its
   changelog record.

2. On disk only once in the changelog. Faust writes a state to RocksDB at once and records
   the changelog offset when the changelog acknowledges the write. After a kill -9 its
   RocksDB then holds states the changelog never got: states that record alerts which
   may not have been sent (replayed, their events are skipped as applied: the alerts are
   lost), and that a worker taking the partition over never sees. Here a state waits in
   memory (`_pending`, read first) until its changelog record is acknowledged; then the
   states of that record batch and the offset it ends at go to RocksDB in one write
   (`persist`, called by streams/compat/changelog_batches.py). So a partition's database is
   always a prefix of its changelog with the offset it ends at, and recovery reads only
   the rest: after a crash, on a restart with other partitions, or when a partition comes
   back after another worker had it, the table is what the changelog says, as with the
   memory store after a full recovery. A state still waiting is read before what recovery
   writes for its key: on a partition kept through a rebalance it is the newer one (a
   commit, and so a rebalance, waits for every changelog write handed over, so on a
   partition that moved nothing of this worker's still waits).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import faust
import rocksdict
from faust.stores import rocksdb
from faust.types import TP
from yarl import URL


class HoldingsStore(rocksdb.Store):
    """Faust's RocksDB store with (1) and (2) above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[bytes, bytes | None] = {}  # serialized key -> value (None: deleted)

    def _set(self, key: bytes, value: bytes | None) -> None:
        self._pending[key] = value

    def _del(self, key: bytes) -> None:
        self._pending[key] = None

    def _get(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        for partition, db in self._dbs_to_search(key):
            value: bytes | None = db.get(key)
            if value is not None:
                self._key_index[key] = partition
                return value
        return None

    def _dbs_to_search(self, key: bytes) -> list[tuple[int, Any]]:
        partition = self._key_index.get(key)
        if partition is not None and partition in self._dbs:
            return [(partition, self._dbs[partition])]
        return list(self._dbs.items())

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        pending = dict(self._pending)
        for key, value in pending.items():
            if value is not None:
                yield key, value
        for key, value in super()._iteritems():
            if key not in pending:
                yield key, value

    def _items_decoded(self) -> Iterator[tuple[Any, Any]]:
        # The partition clocks read every item after a rebalance. Faust's registry takes
        # ~4 us to decode a key and a value; a plain JSON key is its text in quotes, and a
        # raw value is itself.
        if self.key_serializer != "json" or self.value_serializer != "raw":
            yield from super()._items_decoded()
            return
        for key, value in self._iteritems():
            yield key[1:-1].decode() if b"\\" not in key else json.loads(key), value

    def _iterkeys(self) -> Iterator[bytes]:
        for key, _ in self._iteritems():
            yield key

    def _itervalues(self) -> Iterator[bytes]:
        for _, value in self._iteritems():
            yield value

    def _size(self) -> int:
        return sum(1 for _ in self._iteritems())

    def persist(self, tp: TP, offset: int, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """The changelog holds `records` (serialized key, value), the last at `offset`: put
        them and the offset on disk as one write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.offset_key, str(offset).encode())
        # Reopened if the partition was revoked meanwhile: still a prefix of its changelog.
        self._db_for_partition(tp.partition).write(batch)
        for key, value in records:
            self._key_index[key] = tp.partition
            if key in self._pending and self._pending[key] == value:
                del self._pending[key]  # else a later state of the key still waits for its record


class HoldingsTable(faust.Table):  # type: ignore[type-arg]
    """A Faust table whose `rocksdb://` store is `HoldingsStore` (any other store as Faust's)."""

    def _new_store_by_url(self, url: str | URL) -> Any:
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        return HoldingsStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )
