"""What each agent has taken, for /health to tell a stalled agent from an idle one."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class AgentProgress:
    """What one agent took: per partition the next offset, and when it last took a record."""

    name: str
    topic: str
    next_offset: dict[int, int] = field(default_factory=dict)
    last_taken: float = field(default_factory=time.monotonic)  # starting counts as progress
    running: bool = True  # false once its loop has ended

    def took(self, partition: int, offset: int) -> None:
        self.next_offset[partition] = offset + 1
        self.last_taken = time.monotonic()

    def reassigned(self) -> None:
        """After a rebalance: offsets of partitions it had say nothing any more."""
        self.next_offset.clear()
        self.last_taken = time.monotonic()


def waiting_records(
    progress: AgentProgress, ends: Mapping[int, int], committed: Mapping[int, int]
) -> int:
    """Records at the end of the agent's partitions that it has not taken.

    A partition it has not taken from since the last rebalance counts from its committed
    offset; one with neither is skipped (nothing known, nothing claimed).

    >>> p = AgentProgress("transactions", "t")
    >>> p.took(0, 9)
    >>> waiting_records(p, {0: 10, 1: 5, 2: 7}, {1: 3})
    2
    """
    waiting = 0
    for partition, end in ends.items():
        start = progress.next_offset.get(partition, committed.get(partition))
        if start is not None:
            waiting += max(0, end - start)
    return waiting
