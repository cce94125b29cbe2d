"""What each agent has taken, to tell a stalled partition from an idle one (/health, the
stall watch)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class AgentProgress:
    """What one agent took: per partition the next offset and when it last moved."""

    name: str
    topic: str
    next_offset: dict[int, int] = field(default_factory=dict)
    # Per partition, when it last took a record or was handed over; a partition not in
    # here counts from `since`.
    taken_at: dict[int, float] = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)  # start or last rebalance
    running: bool = True  # false once its loop has ended

    def took(self, partition: int, offset: int) -> None:
        self.next_offset[partition] = offset + 1
        self.taken_at[partition] = time.monotonic()

    def reassigned(self) -> None:
        """After a rebalance: offsets of partitions it had say nothing any more."""
        self.next_offset.clear()
        self.taken_at.clear()
        self.since = time.monotonic()

    def restarted(self, partition: int) -> None:
        """The partition was sent back to its committed offset: it counts from now."""
        self.next_offset.pop(partition, None)
        self.taken_at[partition] = time.monotonic()


@dataclass(frozen=True)
class Stall:
    """A partition with records waiting that took none for `idle_s`."""

    partition: int
    waiting: int
    idle_s: float


def stalls(
    progress: AgentProgress,
    ends: Mapping[int, int],
    committed: Mapping[int, int],
    *,
    now: float,
    stall_s: float,
    quiet_until: float = 0.0,
) -> list[Stall]:
    """The agent's partitions with records at their end it has not taken, idle for longer
    than `stall_s` (time before `quiet_until`, a rebalance or a recovery, not counted).

    A partition it has not taken from since the last rebalance counts from its committed
    offset; one with neither is skipped (nothing known, nothing claimed).

    >>> p = AgentProgress("transactions", "t", since=0.0)
    >>> p.next_offset[0], p.taken_at[0] = 8, 100.0
    >>> stalls(p, {0: 10, 1: 5, 2: 7}, {1: 3}, now=131.0, stall_s=30)
    [Stall(partition=0, waiting=2, idle_s=31.0), Stall(partition=1, waiting=2, idle_s=131.0)]
    """
    found = []
    for partition, end in sorted(ends.items()):
        start = progress.next_offset.get(partition, committed.get(partition))
        if start is None or end <= start:
            continue
        idle = now - max(progress.taken_at.get(partition, progress.since), quiet_until)
        if idle > stall_s:
            found.append(Stall(partition, end - start, round(idle, 1)))
    return found
