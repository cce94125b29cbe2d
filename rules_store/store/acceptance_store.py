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
