"""Decoded customer states, the most recently used ones only.

Decoding a state costs more than reading its bytes, and a decoded state takes several
times the memory of its bytes (~5.9 KiB as objects against ~1.3 KB of JSON), so a worker
keeps the states it used last decoded, up to a bound, instead of every customer it has.
Each entry keeps the bytes it was decoded from: it serves only while the table holds the
same bytes (a state recovered from the changelog after a rebalance is decoded again).
"""

from __future__ import annotations

from rules_store.domain.holdings import CustomerState


class DecodedStates:
    """Up to `limit` decoded states, least recently used dropped first.

    >>> from rules_store.domain.holdings import CustomerState
    >>> cache = DecodedStates(limit=1)
    >>> cache.put("a", b"1", CustomerState("a"))
    >>> cache.get("a", b"1"), cache.get("a", b"2")
    (CustomerState(customer_id='a', ...), None)
    >>> cache.put("b", b"1", CustomerState("b")); cache.get("a", b"1"), len(cache)
    (None, 1)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Insertion order is use order: a hit moves its entry to the end.
        self._entries: dict[str, tuple[bytes, CustomerState]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, customer: str, stored: bytes) -> CustomerState | None:
        """The state decoded from `stored`, if kept; None if not kept or decoded from other bytes."""
        entry = self._entries.pop(customer, None)
        if entry is None or entry[0] != stored:
            return None
        self._entries[customer] = entry
        return entry[1]

    def put(self, customer: str, stored: bytes, state: CustomerState) -> None:
        """Keep `state`, decoded from (or encoded to) `stored`, dropping the least recently used."""
        self._entries.pop(customer, None)
        if self.limit <= 0:
            return
        self._entries[customer] = (stored, state)
        while len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]
