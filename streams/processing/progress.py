"""What each agent has taken, and which of its partitions stopped committing (the stall
watch, /health)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class AgentProgress:
    """What one agent took: per partition the next offset."""

    name: str
    topic: str
    next_offset: dict[int, int] = field(default_factory=dict)
    running: bool = True  # false once its loop has ended

    def took(self, partition: int, offset: int) -> None:
        self.next_offset[partition] = offset + 1

    def reassigned(self) -> None:
        """After a rebalance: offsets of partitions it had say nothing any more."""
        self.next_offset.clear()


@dataclass(frozen=True)
class Stall:
    """A partition with records past its committed offset, which has not moved for `idle_s`."""

    partition: int
    waiting: int
    idle_s: float


class CommitClocks:
    """Per partition of one topic: its committed offset, and since when it has stood still
    while records waited past it.

    The committed offset, not what the agent took, is what tells: a partition whose
    records are no longer fetched commits nothing, and so does one whose records are
    taken while an earlier one is never acknowledged (Faust then holds its commits back
    for good). Either way, with records waiting, it stands still.

    >>> clocks = CommitClocks(stall_s=30)
    >>> clocks.observe({0: 50, 1: 20}, {0: 30, 1: 20}, now=0.0)
    []
    >>> clocks.observe({0: 50, 1: 20}, {0: 30, 1: 20}, now=31.0)
    [Stall(partition=0, waiting=20, idle_s=31.0)]
    >>> clocks.observe({0: 50, 1: 25}, {0: 31, 1: 20}, now=62.0)  # 0 moved; 1 just got records
    []
    """

    def __init__(self, *, stall_s: float) -> None:
        self.stall_s = stall_s
        self._seen: dict[int, tuple[int, float]] = {}  # partition -> (committed, since)

    def observe(
        self, ends: Mapping[int, int], committed: Mapping[int, int], *, now: float
    ) -> list[Stall]:
        """The partitions stalled at `now`, given their end and committed offsets."""
        found = []
        for partition in set(self._seen) - set(ends):  # no longer ours
            del self._seen[partition]
        for partition, end in sorted(ends.items()):
            offset = committed.get(partition)
            if offset is None:
                continue
            if end <= offset:  # nothing waits: the time starts when records come
                self._seen.pop(partition, None)
                continue
            seen = self._seen.get(partition)
            if seen is None or seen[0] != offset:
                self._seen[partition] = (offset, now)  # records came, or it moved
                continue
            idle = now - seen[1]
            if idle > self.stall_s:
                found.append(Stall(partition, end - offset, round(idle, 1)))
        return found

    def quiet(self, now: float) -> None:
        """A rebalance or a recovery is on, when records wait by design: time starts again."""
        self._seen = {p: (offset, now) for p, (offset, _) in self._seen.items()}

    def restarted(self, partition: int, now: float) -> None:
        """The partition was sent back to its committed offset: time starts again."""
        if partition in self._seen:
            self._seen[partition] = (self._seen[partition][0], now)
