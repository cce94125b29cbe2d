"""Customers' current states: changed ones kept decoded until a commit writes them, the
rest read from the table through the bounded cache of decoded states.

A batch changes states here (marked dirty, with the changelog partition); a commit takes
the dirty states at once (`take_dirty`), then encodes each once, puts the bytes in the
table and hands them to the changelog, a chunk at a time (`write`) while batches go on.
Until a taken state is in the table it is still the current one (`get`). A partition's
acceptance counts go the same way, under their own key (`put_value`).

States read from the table are decoded through `DecodedStates`
(streams/processing/state_cache.py): bounded, and an entry serves only while the table
holds the bytes it was decoded from (e.g. not after a rebalance recovered others). A
state not written yet is held here, outside that bound: a commit empties them.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import NamedTuple

from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import decode_state, encode_state
from streams.processing.outbox import Stored
from streams.processing.state_cache import DecodedStates


class Changed(NamedTuple):
    """A changed state taken by a commit, to be written."""

    customer: str
    partition: int  # of the changelog
    state: CustomerState


class Value(NamedTuple):
    """Another changed value of the table (a partition's acceptance counts), to encode."""

    partition: int  # of the changelog
    encode: Callable[[], bytes]


class CurrentStates:
    def __init__(self, table: MutableMapping[str, bytes], *, cache_size: int = 50_000) -> None:
        self.table = table
        self.cache = DecodedStates(cache_size)
        self._dirty: dict[str, tuple[int, CustomerState]] = {}  # customer -> (partition, state)
        self._taken: dict[str, CustomerState] = {}  # taken by a commit, not in the table yet
        self._values: dict[str, Value] = {}  # other keys changed since the last take

    def get(self, customer: str) -> CustomerState | None:
        """The customer's current state (a changed one before the table has it)."""
        if (dirty := self._dirty.get(customer)) is not None:
            return dirty[1]
        if (taken := self._taken.get(customer)) is not None:
            return taken
        stored = self.table.get(customer)
        if not stored:
            return None
        state = self.cache.get(customer, stored)
        if state is None:
            state = decode_state(stored)
            self.cache.put(customer, stored, state)
        return state

    def pending(self, customer: str) -> CustomerState | None:
        """The customer's state if changed and not in the table yet, else None."""
        if (dirty := self._dirty.get(customer)) is not None:
            return dirty[1]
        return self._taken.get(customer)

    def put(self, partition: int, state: CustomerState) -> None:
        self._dirty[state.customer_id] = (partition, state)

    def put_value(self, partition: int, key: str, encode: Callable[[], bytes]) -> None:
        """Write what `encode` gives under `key` at the next commit, with the states (the
        latest put of a key wins)."""
        self._values[key] = Value(partition, encode)

    @property
    def dirty(self) -> int:
        return len(self._dirty) + len(self._values)

    def take_dirty(self) -> tuple[list[Changed], dict[str, Value]]:
        """The changed states and values, no longer dirty: a commit writes them (`write`,
        `write_values`)."""
        taken = [Changed(c, p, s) for c, (p, s) in self._dirty.items()]
        self._taken.update((c, s) for c, (_, s) in self._dirty.items())
        self._dirty.clear()
        values, self._values = self._values, {}
        return taken, values

    def write(self, changed: Sequence[Changed]) -> list[Stored]:
        """Encode taken states, put them in the table, and return them for the changelog.
        A customer changed again since keeps the newer state, dirty for the next commit."""
        out = []
        for customer, partition, state in changed:
            value = encode_state(state)
            self.table[customer] = value
            self.cache.put(customer, value, state)
            if self._taken.get(customer) is state:
                del self._taken[customer]
            out.append(Stored(partition, customer, value))
        return out

    def write_values(self, values: dict[str, Value]) -> list[Stored]:
        """Encode taken values, put them in the table, and return them for the changelog."""
        out = []
        for key, (partition, encode) in values.items():
            raw = encode()
            self.table[key] = raw
            out.append(Stored(partition, key, raw))
        return out

    def untake(self, changed: Sequence[Changed], values: dict[str, Value]) -> None:
        """Taken states and values a commit could not write (or not know written): dirty
        again, unless changed since."""
        for customer, partition, state in changed:
            if self._taken.get(customer) is state:
                del self._taken[customer]
            self._dirty.setdefault(customer, (partition, state))
        for key, value in values.items():
            self._values.setdefault(key, value)

    def forget(self) -> None:
        """Partitions moved: read everything from the (recovered) table again. Changes not
        yet written are dropped: their offsets were not committed (every commit writes
        them first), so their records are read again. The cache stays: an entry serves
        only while the table holds the bytes it was decoded from."""
        self._dirty.clear()
        self._taken.clear()
        self._values.clear()
