"""The commit ordering, owned by one object: a batch's alerts and dead letters are
produced first; its states go into the table at once (the next batch reads them) but
reach the changelog only once those messages are acknowledged; each batch's changelog
writes follow the previous batch's; a commit waits for all of it (`settled`).

So a crash at any point re-sends a batch's alerts (same ids) rather than loses them,
and never commits an offset whose effects are not in the changelog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

from streams.processing.outbox import Message, Stored

log = logging.getLogger(__name__)


class TopicLike(Protocol):
    async def send(self, *, key: bytes | None, value: bytes) -> Awaitable[Any]: ...


class ChangelogTable(Protocol):
    @property
    def data(self) -> MutableMapping[str, bytes]: ...

    def send_changelog(self, partition: int, key: str, value: bytes) -> Any: ...


class Outflow:
    """Delivers batches to Faust topics and a changelogged table, in the order above."""

    def __init__(self, topics: Mapping[str, TopicLike], table: ChangelogTable) -> None:
        self.topics, self.table = topics, table
        self._last: asyncio.Future[None] | None = None

    async def deliver(self, messages: Sequence[Message], states: Sequence[Stored]) -> None:
        sent = [await self._send(m) for m in messages]
        for stored in states:
            self.table.data[stored.customer] = stored.value
        if states:
            self._last = asyncio.ensure_future(self._write_after(self._last, sent, states))

    async def settled(self) -> None:
        """Every changelog write handed over so far is sent (a failure raises here)."""
        while self._last is not None and not self._last.done():
            await self._last

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

    async def _write_after(
        self,
        previous: asyncio.Future[None] | None,
        sent: list[Awaitable[Any]],
        states: Sequence[Stored],
    ) -> None:
        if previous is not None:
            await previous
        await asyncio.gather(*sent)  # acknowledged before any state that records them
        for stored in states:
            self.table.send_changelog(stored.partition, stored.customer, stored.value)
