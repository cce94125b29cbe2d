"""Rules-store figures, each against a baseline measured in the same run.

1. A bundle of 20 segments x 8 products with full rules (min support 0.001, no
   confidence or lift floor): its size, publish time and verified load time on the
   embedded Redis, against a raw SET/GET of the same bytes (Redis' own cost).
2. One recommendation: the precomputed `OfferIndex` lookup against calling the pure
   `recommend` on the segment's rules (what a lookup replaces).

Run: .venv/bin/python bench/bundle_store.py [--customers N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.offers import OfferIndex
from rules_store.domain.rules import recommend
from rules_store.settings import Settings
from rules_store.store.redis_store import BundleStore, encode_bundle, open_redis
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack


def _median_s(action, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=200_000, help="customers to train the 20 segments on"
    )
    parser.add_argument("--repeat", type=int, default=20, help="repetitions of each Redis timing")
    parser.add_argument("--lookups", type=int, default=200_000, help="recommendations to time")
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="xsell-bench-store-"))

    with console.status("training a 20-segment bundle"):
        data = work / "c.del"
        write_retail(generate_retail(args.customers, seed=5), data, "del")
        params = TrainParams(segments=20, min_support=0.001, min_confidence=0.0, min_lift=0.0)
        bundle = train_retail(data, RETAIL_SCHEMA, params).bundle
    payload, _, _ = encode_bundle(bundle)
    rules = sum(len(s.rules) for s in bundle.segments)

    with EmbeddedStack(
        Settings(state_dir=work / "state", kafka_brokers="127.0.0.1:9"), announce=False
    ) as stack:
        client = open_redis(stack.settings, stack.endpoints)
        store = BundleStore(client, "bench")
        raw_set = _median_s(lambda: client.set("bench:raw", payload), args.repeat)
        raw_get = _median_s(lambda: client.get("bench:raw"), args.repeat)

        version = encode_bundle(bundle)[2]
        publishes = []
        for _ in range(args.repeat):
            # Publishing is idempotent per content: remove the version first, off the clock.
            store.client.delete(store.keys.bundle(version), store.keys.meta(version))
            started = time.perf_counter()
            store.publish(bundle)
            publishes.append(time.perf_counter() - started)
        publish = statistics.median(publishes)
        version = store.publish(bundle)
        load = _median_s(lambda: store.load(version), args.repeat)

    index_build_started = time.perf_counter()
    index = OfferIndex(bundle)
    index_build = time.perf_counter() - index_build_started
    rng = np.random.default_rng(1)
    segments = rng.integers(0, len(bundle.segments), args.lookups).tolist()
    masks = rng.integers(0, 256, args.lookups).tolist()
    pairs = list(zip(segments, masks, strict=True))

    started = time.perf_counter()
    for segment, held in pairs:
        index.offers(segment, held)
    lookup = (time.perf_counter() - started) / len(pairs)
    pure_pairs = pairs[: max(len(pairs) // 20, 1)]
    started = time.perf_counter()
    for segment, held in pure_pairs:
        s = bundle.segments[segment]
        recommend(held, s.rules, s.popularity)
    pure = (time.perf_counter() - started) / len(pure_pairs)

    table = Table(
        title=f"rules store: {len(bundle.segments)} segments x {len(bundle.items)} products, {rules:,} rules",
        title_justify="left",
    )
    for column in ("figure", "value", "baseline", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    table.add_row("bundle size (JSON)", f"{len(payload) / 1024:.0f} KiB", "", "")
    table.add_row(
        "publish (MULTI: blob, meta, index)",
        f"{publish * 1000:.1f} ms",
        f"raw SET {raw_set * 1000:.1f} ms",
        f"{publish / raw_set:.1f}x",
    )
    table.add_row(
        "load (GET, SHA-256, validate, decode)",
        f"{load * 1000:.1f} ms",
        f"raw GET {raw_get * 1000:.1f} ms",
        f"{load / raw_get:.1f}x",
    )
    table.add_row(
        "offer index build (all segments x 256 masks)", f"{index_build * 1000:.0f} ms", "", ""
    )
    table.add_row(
        "one recommendation: index lookup",
        f"{lookup * 1e6:.2f} µs",
        f"pure recommend {pure * 1e6:.1f} µs",
        f"{pure / lookup:.0f}x faster",
    )
    console.print(table)


if __name__ == "__main__":
    main()
