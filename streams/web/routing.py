"""Which worker answers for a customer: the one owning the customer's partition."""

from __future__ import annotations

import aiohttp
import faust
from faust.web import Request
from kafka.partitioner.default import murmur2
from yarl import URL

ROUTED_HEADER = "X-Xsell-Routed-From"  # set on a forwarded request: never forwarded again
SERVED_BY_HEADER = "X-Xsell-Worker"
FORWARD_TIMEOUT_S = 10.0


class Router:
    """Finds a customer's partition and its owner in Faust's assignment, and forwards."""

    def __init__(self, app: faust.App, table: faust.types.TableT[str, bytes], partitions: int):
        self.app, self.table, self.partitions = app, table, partitions
        self.changelog = table.changelog_topic.get_topic_name()
        self._session: aiohttp.ClientSession | None = None

    def here(self) -> URL:
        return URL(str(self.app.conf.canonical_url))

    def is_here(self, url: URL) -> bool:
        here = self.here()
        return (url.host, url.port) == (here.host, here.port)

    def partition_of(self, customer: str) -> int:
        # The producers' partitioner (kafka-python and aiokafka both: Java's murmur2), so
        # the partition the customer's events, and so their state, live in.
        return int(murmur2(customer.encode()) & 0x7FFFFFFF) % self.partitions

    def owner_of(self, partition: int) -> URL | None:
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            if partition in topics.get(self.changelog, ()):
                return URL(url)
        return None

    async def forward(self, request: Request, owner: URL) -> tuple[int, bytes, dict[str, str]]:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        headers = {ROUTED_HEADER: str(self.here())}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        async with self._session.get(owner.with_path(request.url.path), headers=headers) as resp:
            body = await resp.read()
            served = resp.headers.get(SERVED_BY_HEADER, str(owner))
            return resp.status, body, {SERVED_BY_HEADER: served, ROUTED_HEADER: str(self.here())}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
