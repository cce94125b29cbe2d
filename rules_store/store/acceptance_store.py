"""Acceptance counts in Redis: each worker writes its partitions' counts, anyone sums them.

A worker owns the counts of its partitions (kept with its table, so they survive a restart
and move with a rebalance) and writes them here as absolute values, one field per
(segment, product, partition): writing the same counts twice changes nothing, and two
workers never write the same field. Readers (the other workers, `xsell bundles report`,
the dashboard) add the partitions up. O(segments × products × partitions) per version.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import redis

from rules_store.domain.acceptance import ArmKey, Tally
from rules_store.store.keys import StoreKeys

log = logging.getLogger(__name__)
_SEP = "\x1f"
SNAPSHOT_TTL_S = 35 * 24 * 3600


def _field(key: ArmKey, partition: int) -> str:
    return f"{key.segment}{_SEP}{key.product}{_SEP}{partition}"


class AcceptanceStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = StoreKeys(f"{prefix}:rules")

    def write(self, partition: int, book: Mapping[ArmKey, Tally]) -> None:
        """Store one partition's counts (absolute values) for every version they name."""
        with self.client.pipeline(transaction=False) as pipe:
            for key, t in book.items():
                value = json.dumps([t.sent, t.accepted, t.declined, t.ignored])
                pipe.hset(self.keys.acceptance(key.bundle_version), _field(key, partition), value)
            pipe.execute()

    def day_snapshot(self, version: str, day: str) -> dict[ArmKey, Tally]:
        """The counts offers of `day` are ranked with: stored by the first asker, then fixed."""
        key = self.keys.acceptance_day(version, day)
        raw: bytes | None = self.client.get(key)  # type: ignore[assignment]
        if raw is None:
            book = self.read(version)
            document = json.dumps(
                [
                    [k.segment, k.product, t.sent, t.accepted, t.declined, t.ignored]
                    for k, t in book.items()
                ],
                ensure_ascii=False,
            )
            # Kept a month past its day: replays never go back that far.
            self.client.set(key, document, nx=True, ex=SNAPSHOT_TTL_S)
            raw = self.client.get(key)  # type: ignore[assignment]
            if raw is None:  # expired or deleted in between: what we computed is as good
                return book
        snapshot: dict[ArmKey, Tally] = {}
        for segment, product, sent, accepted, declined, ignored in json.loads(raw):
            snapshot[ArmKey(version, int(segment), str(product))] = Tally(
                int(accepted), int(declined), int(ignored), int(sent)
            )
        return snapshot

    def read(self, version: str) -> dict[ArmKey, Tally]:
        """A version's counts, summed over partitions; a field that does not parse is skipped
        and logged (it cannot be ours)."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.acceptance(version))  # type: ignore[assignment]
        book: dict[ArmKey, Tally] = {}
        for name, value in raw.items():
            try:
                segment, product, _partition = name.decode().split(_SEP)
                sent, accepted, declined, ignored = (int(v) for v in json.loads(value))
                key = ArmKey(version, int(segment), product)
            except (ValueError, TypeError) as exc:
                log.warning("skipped acceptance field %r of version=%s: %s", name, version, exc)
                continue
            book[key] = book.get(key, Tally()) + Tally(accepted, declined, ignored, sent)
        return book


class DayCounts:
    """The day snapshots a worker ranks with, cached: Redis is read once per (version, day).

    When Redis cannot be read, offers rank with no counts (the prior alone) and the read is
    retried after `retry_s`; a replay of those events after Redis is back may then rank
    differently, the one case where a re-sent alert can differ.
    """

    def __init__(self, store: AcceptanceStore, *, retry_s: float = 30.0) -> None:
        self.store, self.retry_s = store, retry_s
        self._cache: dict[tuple[str, str], dict[ArmKey, Tally]] = {}
        self._failed_at = -float("inf")
        self.problem: str | None = None

    def __call__(self, version: str, day: str) -> Mapping[ArmKey, Tally]:
        cached = self._cache.get((version, day))
        if cached is not None:
            return cached
        if time.monotonic() - self._failed_at < self.retry_s:
            return {}
        try:
            snapshot = self.store.day_snapshot(version, day)
        except redis.RedisError as exc:
            self._failed_at = time.monotonic()
            self.problem = f"acceptance counts unreadable, offers rank on the prior: {exc}"
            log.warning("acceptance snapshot version=%s day=%s unreadable: %s", version, day, exc)
            return {}
        self.problem = None
        if len(self._cache) > 64:  # a few versions × a few days are ever in use
            self._cache.clear()
        self._cache[(version, day)] = snapshot
        return snapshot
