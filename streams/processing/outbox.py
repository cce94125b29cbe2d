"""What the processor takes and hands on: input records, and a batch's messages and states."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol


class Record(NamedTuple):
    """One input record, as the broker gave it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # the broker's timestamp in seconds, for latency


class Message(NamedTuple):
    """An alert or a dead letter to produce."""

    topic: str
    key: bytes | None
    value: bytes


class Stored(NamedTuple):
    """A customer's new state, encoded, for the table and its changelog partition."""

    partition: int
    customer: str
    value: bytes


class Sender(Protocol):
    """Produces a batch's messages, and states at a commit once the messages are acknowledged."""

    async def send(self, messages: Sequence[Message]) -> None: ...

    def acknowledgements(self) -> Awaitable[object]:
        """What acknowledges every message handed over so far."""
        ...

    async def write_changelog(self, states: Sequence[Stored]) -> None:
        """Hand states to the changelog (a flush's, in order; `changelog_written` ends it)."""
        ...

    async def changelog_written(self) -> None:
        """Wait until every state handed over is in the changelog and the table."""
        ...
