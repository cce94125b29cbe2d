"""The outflow's changelog writer: one per flush, and none kept after a failed write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.processing.outbox import Stored
from streams.processing.outflow import Outflow


class _Batches:
    """A changelog writer that fails its first `add` when told to."""

    def __init__(self, fail: bool) -> None:
        self.fail, self.added, self.closed = fail, [], False

    async def add(self, states: Sequence[Stored]) -> None:
        if self.fail:
            msg = "the broker refused a changelog batch"
            raise RuntimeError(msg)
        self.added += [s.customer for s in states]

    async def close(self) -> None:
        self.closed = True


def test_a_flush_writes_through_one_writer_and_a_failed_one_is_not_reused() -> None:
    made: list[_Batches] = []

    def new() -> _Batches:
        made.append(_Batches(fail=not made))  # the first one fails
        return made[-1]

    outflow = Outflow({}, new)
    state = [Stored(0, "c1", b"{}")]
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(outflow.write_changelog(state))
    asyncio.run(outflow.write_changelog(state))
    asyncio.run(outflow.write_changelog([Stored(1, "c2", b"{}")]))
    asyncio.run(outflow.changelog_written())
    assert [(b.added, b.closed) for b in made] == [([], False), (["c1", "c2"], True)]
    asyncio.run(outflow.changelog_written())  # nothing handed over since: nothing to close
    assert len(made) == 2
