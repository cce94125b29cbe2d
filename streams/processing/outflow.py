"""The commit ordering, owned by one object: a batch's alerts and dead letters are
produced as the batch ends; changed states stay decoded in the worker (`DecodedStates`)
and reach the table and its changelog only at a commit, once every message produced
before is acknowledged (`Processor.flush`, awaited before each commit and at shutdown by
`flush_waits_for`), a record batch per partition (streams/compat/changelog_batches.py);
a commit then waits for those changelog writes too.

So a crash at any point re-sends a batch's alerts (same ids) rather than loses them,
never commits an offset whose effects are not in the changelog, and writes a state once
per commit however many batches changed it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from streams.processing.outbox import Message, Stored

log = logging.getLogger(__name__)


class TopicLike(Protocol):
    async def send(self, *, key: bytes | None, value: bytes) -> Awaitable[Any]: ...


class Changelog(Protocol):
    async def add(self, states: Sequence[Stored]) -> None: ...

    async def close(self) -> None: ...


class Outflow:
    """Produces messages to Faust topics and states to a table's changelog."""

    def __init__(self, topics: Mapping[str, TopicLike], changelog: Callable[[], Changelog]) -> None:
        self.topics, self.changelog = topics, changelog
        self._sent: list[Awaitable[Any]] = []  # acknowledgements not awaited yet
        self._writing: Changelog | None = None  # the changelog records of this flush

    async def send(self, messages: Sequence[Message]) -> None:
        """Hand the messages to the producer (acknowledged later, see `acknowledgements`)."""
        for message in messages:
            self._sent.append(await self._send(message))

    def acknowledgements(self) -> Awaitable[object]:
        """What acknowledges every message handed over so far (a failure raises there)."""
        sent, self._sent = self._sent, []
        return asyncio.gather(*sent)

    async def write_changelog(self, states: Sequence[Stored]) -> None:
        if self._writing is None:
            self._writing = self.changelog()
        try:
            await self._writing.add(states)
        except BaseException:
            self._writing = None  # its batches failed: the next flush starts afresh
            raise

    async def changelog_written(self) -> None:
        """Wait until the broker has every changelog record handed over, and the table
        knows their offsets."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing.close()

    async def _send(self, message: Message) -> Awaitable[Any]:
        """Hand a record to the producer, retrying while it refuses (the broker is away):
        the batch waits, and /health shows the agent stalled, rather than lose it."""
        delay = 0.5
        while True:
            try:
                return await self.topics[message.topic].send(key=message.key, value=message.value)
            except Exception as exc:
                log.warning("send to %s failed (%s); retrying in %.1f s", message.topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
