"""Every Redis key of the rules store, built in one place from the configured prefix.

{p}:bundle:{version}     string  the bundle's JSON bytes (immutable)
{p}:meta:{version}       hash    sha256, bytes, created_at, published_at, summary
{p}:versions             zset    version -> publish time (ms)
{p}:active               string  the active version
{p}:history              list    previously active versions, newest first (rollback)
{p}:events               channel activation announcements (the new version)
{p}:challenger           hash    the challenger bundle: version, share (of customers)
{p}:acceptance:{version} hash    "{segment}\x1f{product}\x1f{partition}" -> [sent, accepted,
                                 declined, ignored]: each worker writes its partitions' counts
{p}:acceptance:{version}:{day}  string  the counts offers of that event-time day rank with

The prefix is a Redis Cluster hash tag (`{xsell:rules}`), so every key of the store lives
in one slot and the MULTI blocks and Lua scripts also work on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreKeys:
    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix.startswith("{"):
            object.__setattr__(self, "prefix", f"{{{self.prefix}}}")

    def bundle(self, version: str) -> str:
        return f"{self.prefix}:bundle:{version}"

    def meta(self, version: str) -> str:
        return f"{self.prefix}:meta:{version}"

    @property
    def versions(self) -> str:
        return f"{self.prefix}:versions"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    @property
    def history(self) -> str:
        return f"{self.prefix}:history"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events"

    @property
    def challenger(self) -> str:
        return f"{self.prefix}:challenger"

    def acceptance(self, version: str) -> str:
        return f"{self.prefix}:acceptance:{version}"

    def acceptance_day(self, version: str, day: str) -> str:
        return f"{self.prefix}:acceptance:{version}:{day}"
