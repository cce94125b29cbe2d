"""Customers' states kept decoded between batches; encoded only when they go out.

A batch changes states here (marked dirty, with the changelog partition); a commit
encodes each dirty state once, puts the bytes in the table and hands them to the
changelog. A state is decoded from the table only when the table holds other bytes than
the ones it was read from or written as (e.g. recovered after a rebalance).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import decode_state, encode_state
from streams.processing.outbox import Stored


class DecodedStates:
    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self._cache: dict[str, tuple[bytes | None, CustomerState]] = {}
        self._dirty: dict[str, int] = {}  # customer -> changelog partition

    def get(self, customer: str) -> CustomerState | None:
        """The customer's current state (a changed one before the table has it)."""
        cached = self._cache.get(customer)
        if cached is not None and customer in self._dirty:
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

    def encode_dirty(self) -> list[Stored]:
        """Each changed state, encoded once and put in the table, for its changelog."""
        out = []
        for customer, partition in self._dirty.items():
            state = self._cache[customer][1]
            value = encode_state(state)
            self.table[customer] = value
            self._cache[customer] = (value, state)
            out.append(Stored(partition, customer, value))
        self._dirty.clear()
        return out

    def forget(self) -> None:
        """Partitions moved: read everything from the (recovered) table again. Changes not
        yet written are dropped: their offsets were not committed (every commit writes
        them first), so their records are read again."""
        self._cache.clear()
        self._dirty.clear()
