"""Work-arounds for the embedded broker (Tansu 0.6), applied only when it is in use.

Fetch wait. Tansu holds every fetch for its full maximum wait, even when data is there,
and Faust passes aiokafka a fixed 1,500 ms: on the embedded broker an event then waits
up to 1.5 s before a worker sees it (demo: event→alert p50 1.25 s). A real broker answers
as soon as data arrives. `install_fetch_wait` sets the wait Faust's consumer uses.

Changelog fence. Tansu reports a partition's end offset as the start of its *last record
batch* (measured: 4,441 reported for 5,000 records written in batches). Faust recovers a
table from its changelog only up to that reported end, so a restarted worker silently
misses the changelog records of the last batch, and their source events are already
committed: those updates would be lost for good. A single-record batch ends exactly where
it starts, so before Faust reads the end offsets of the changelog partitions it recovers,
we append one such "fence" record to each of them. Recovery then reads every real record;
the fence key (`FENCE_KEY`) lands in the table and is never looked up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Set
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

log = logging.getLogger(__name__)

# JSON-encoded, like every key Faust writes to a changelog (it decodes them on recovery).
FENCE_CUSTOMER = "__xsell_changelog_fence__"  # the table key it lands under
FENCE_KEY = f'"{FENCE_CUSTOMER}"'.encode()
_original_build_highwaters: Callable[..., Awaitable[None]] | None = None


async def _fenced_build_highwaters(
    self: Recovery, consumer: Any, tps: Set[Any], destination: Any, title: str
) -> None:
    for tp in tps:
        await self.app.producer.send_and_wait(tp.topic, FENCE_KEY, b"{}", tp.partition, None, None)
    log.info("fenced %s changelog partition(s) before reading their end offsets", len(tps))
    assert _original_build_highwaters is not None  # noqa: S101 - set by install
    await _original_build_highwaters(self, consumer, tps, destination, title)


def install_changelog_fence() -> None:
    """Patch Faust's recovery (faust-streaming 0.15) to fence changelogs first. Idempotent."""
    global _original_build_highwaters  # noqa: PLW0603 - one patch per process
    if _original_build_highwaters is None:
        _original_build_highwaters = Recovery._build_highwaters
        Recovery._build_highwaters = _fenced_build_highwaters  # type: ignore[method-assign]


EMBEDDED_FETCH_WAIT_MS = 20
_original_create_worker_consumer: Callable[..., Any] | None = None
_fetch_wait_ms = EMBEDDED_FETCH_WAIT_MS


def _create_worker_consumer_with_wait(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    assert _original_create_worker_consumer is not None  # noqa: S101 - set by install
    consumer = _original_create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = _fetch_wait_ms  # read when the consumer starts its fetcher
    return consumer


def install_fetch_wait(milliseconds: int) -> None:
    """Make Faust's worker consumer (faust-streaming 0.15) wait at most this long per fetch."""
    global _original_create_worker_consumer, _fetch_wait_ms  # noqa: PLW0603 - one patch per process
    _fetch_wait_ms = milliseconds
    if _original_create_worker_consumer is None:
        _original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
        AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer_with_wait  # type: ignore[method-assign]
