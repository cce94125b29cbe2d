"""The cost of decoding and validating one transaction against plain `json.loads`, same run.

What the worker does for every record before any state is touched (`decode_json` +
`parse_transaction`: the bounds on size, depth, numbers, text and days included), timed
over the same 10,000 generated events as a bare `json.loads`, interleaved in rounds so
both see the same machine. Prints µs/event and the ratio to the baseline.

Run: .venv/bin/python bench/parse_event.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.events import decode_json, parse_transaction

PRODUCTS = ("存款", "理财", "国债", "保险")
CATALOG = RETAIL_SCHEMA.products


def _events(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "event_id": f"e{i}",
                "customer_id": f"10000000{i % 5000:08d}",
                "ts": f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00+08:00",
                "product": PRODUCTS[i % len(PRODUCTS)],
                "kind": ("credit", "debit")[i % 2],
                "amount": 100.0 + i,
                "balance": 5000.0 + i,
                "branch_id": f"b{i % 12:02d}",
                "channel": "手机银行",
            },
            ensure_ascii=False,
        ).encode()
        for i in range(n)
    ]


def _per_event(events: list[bytes], step: object) -> float:
    start = time.perf_counter()
    for raw in events:
        step(raw)  # type: ignore[operator]
    return (time.perf_counter() - start) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    events = _events(10_000)
    base, ours = [], []
    for _ in range(args.rounds):
        base.append(_per_event(events, json.loads))
        ours.append(_per_event(events, lambda raw: parse_transaction(decode_json(raw), CATALOG)))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"{'step':<34}{'µs/event (median)':>20}{'ratio':>8}")
    print(f"{'json.loads (baseline)':<34}{b:>20.2f}{1.0:>8.2f}")
    print(f"{'decode_json + parse_transaction':<34}{o:>20.2f}{o / b:>8.2f}")


if __name__ == "__main__":
    main()
