"""Customers' states kept decoded between batches; encoded only when they go out.

A batch changes states here (marked dirty, with the changelog partition); a commit takes
the dirty states at once (`take_dirty`), then encodes each once, puts the bytes in the
table and hands them to the changelog, a chunk at a time (`write`) while batches go on.
A state is decoded from the table only when the table holds other bytes than the ones it
was read from or written as (e.g. recovered after a rebalance).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import NamedTuple

from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import decode_state, encode_state
from streams.processing.outbox import Stored


class Changed(NamedTuple):
    """A changed state taken by a commit, to be written."""

    customer: str
    partition: int  # of the changelog
    state: CustomerState


class DecodedStates:
    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self._cache: dict[str, tuple[bytes | None, CustomerState]] = {}
        self._dirty: dict[str, int] = {}  # customer -> changelog partition
        self._taken: set[str] = set()  # taken by a commit, not in the table yet

    def get(self, customer: str) -> CustomerState | None:
        """The customer's current state (a changed one before the table has it)."""
        cached = self._cache.get(customer)
        if cached is not None and (customer in self._dirty or customer in self._taken):
            return cached[1]
        stored = self.table.get(customer)
        if not stored:
            return None
        if cached is not None and cached[0] is stored:
            return cached[1]
        state = decode_state(stored)
        self._cache[customer] = (stored, state)
        return state

    def put(self, partition: int, state: CustomerState) -> None:
        customer = state.customer_id
        cached = self._cache.get(customer)
        self._cache[customer] = (cached[0] if cached else None, state)
        self._dirty[customer] = partition

    @property
    def dirty(self) -> int:
        return len(self._dirty)

    def take_dirty(self) -> list[Changed]:
        """The changed states, no longer dirty: a commit writes them (`write`)."""
        taken = [Changed(c, p, self._cache[c][1]) for c, p in self._dirty.items()]
        self._taken.update(self._dirty)
        self._dirty.clear()
        return taken

    def write(self, changed: Sequence[Changed]) -> list[Stored]:
        """Encode taken states, put them in the table, and return them for the changelog.
        A customer changed again since keeps the newer state, dirty for the next commit."""
        out = []
        for customer, partition, state in changed:
            value = encode_state(state)
            self.table[customer] = value
            cached = self._cache.get(customer)
            if cached is not None and cached[1] is state:
                self._cache[customer] = (value, state)
            self._taken.discard(customer)
            out.append(Stored(partition, customer, value))
        return out

    def untake(self, changed: Sequence[Changed]) -> None:
        """Taken states a commit could not write: dirty again, unless changed since."""
        for customer, partition, _ in changed:
            if customer in self._taken:
                self._taken.discard(customer)
                self._dirty.setdefault(customer, partition)

    def forget(self) -> None:
        """Partitions moved: read everything from the (recovered) table again. Changes not
        yet written are dropped: their offsets were not committed (every commit writes
        them first), so their records are read again."""
        self._cache.clear()
        self._dirty.clear()
        self._taken.clear()
