"""One recommendation per event at 8 and at 64 products, against today's pure logic, same run.

What the worker does for a transaction once its state is updated, up to the alert: the
held products before and after (from the state's balances, in the bundle's catalog), the
precomputed offers of the new holdings and the contact policy's pick
(`rules_store.domain.alerts.choose_cross_sell`). The baseline is the same step as it was
written for the one seed-001 catalog (held products by a loop over the 8 module-level
products), on the same bundle and events, interleaved in rounds so all rows see the same
machine. With 64 products the offers are not precomputed for all 2^64 holdings: they are
cached per (segment, holdings) on first sight; rows say which case they time.

Run: .venv/bin/python bench/recommend.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import numpy as np

from rules_store.bundle.model import Bundle, SegmentRules
from rules_store.bundle.schema import RETAIL_SCHEMA, Field
from rules_store.domain.alerts import choose_cross_sell
from rules_store.domain.catalog import Catalog, Product
from rules_store.domain.contact import ContactPolicy, pick_offer
from rules_store.domain.holdings import CustomerState
from rules_store.domain.offers import OfferIndex
from rules_store.domain.rules import Offer, Rule
from rules_store.domain.segments import SegmentModel

TS = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
POLICY = ContactPolicy()
SEGMENTS = 4
RULES_PER_SEGMENT = 400
EVENTS = 5_000


def _bundle(n: int, rng: np.random.Generator) -> Bundle:
    if n == 8:
        schema = RETAIL_SCHEMA
    else:
        products = tuple(Product(f"p{i:02d}", (f"b{i:02d}",), True) for i in range(n))
        fields = tuple(f for f in RETAIL_SCHEMA.fields if f.kind != "balance")
        fields += tuple(Field(p.balances[0], "balance") for p in products)
        schema = replace(RETAIL_SCHEMA, fields=fields, catalog=Catalog(products))
    segments = []
    for s in range(SEGMENTS):
        rules = []
        for _ in range(RULES_PER_SEGMENT):
            a, b, c = rng.choice(n, 3, replace=False).tolist()
            antecedents = (1 << a) | ((1 << b) if rng.random() < 0.5 else 0)
            confidence = float(rng.uniform(0.3, 0.95))
            rules.append(Rule(antecedents, 1 << c, 0.2, 0.3, 0.1, confidence, 1.2, 0.01, 1.5))
        rules.sort(key=Rule.strength, reverse=True)
        popularity = tuple((int(i), 0.5) for i in rng.permutation(n))
        segments.append(SegmentRules(s, 100, tuple(rules), popularity))
    k = len(schema.segment_fields)
    model = SegmentModel(
        tuple(f.name for f in schema.segment_fields), np.zeros(k), np.ones(k), np.zeros((1, k))
    )
    return Bundle(schema, "stop", model, tuple(segments))


def _events(
    bundle: Bundle, rng: np.random.Generator
) -> list[tuple[int, CustomerState, CustomerState]]:
    """(segment, before, after): a customer holding ~3 products credits one more."""
    names = bundle.items
    out = []
    for _ in range(EVENTS):
        held = rng.choice(len(names), 4, replace=False).tolist()
        balances = {names[i]: 1_000.0 for i in held[:3]}
        before = CustomerState("c", balances=balances)
        after = replace(before, balances={**balances, names[held[3]]: 500.0})
        out.append((int(rng.integers(SEGMENTS)), before, after))
    return out


def _choose_today(
    bundle: Bundle, index: OfferIndex, segment: int, before: CustomerState, after: CustomerState
) -> Offer | None:
    """choose_cross_sell as it was at 7c2971c: held products by a loop over the constants."""
    products = bundle.items
    bit = {name: 1 << i for i, name in enumerate(products)}

    def held(state: CustomerState) -> int:
        mask = 0
        for product in products:
            if state.balances.get(product, 0.0) != 0:
                mask |= bit[product]
        return mask

    now = held(after)
    if now == held(before):
        return None
    return pick_offer(
        index.offers(segment, now),
        products,
        last_offered=after.last_offered,
        alert_day=after.alert_day,
        alerts_on_day=after.alerts_on_day,
        ts=TS,
        policy=POLICY,
    )


def _per_event(
    events: list[tuple[int, CustomerState, CustomerState]], step: Callable[..., object]
) -> float:
    start = time.perf_counter()
    for segment, before, after in events:
        step(segment, before, after)
    return (time.perf_counter() - start) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    rows: dict[str, list[float]] = {}

    def now(bundle: Bundle, index: OfferIndex) -> Callable[..., object]:
        return lambda segment, before, after: choose_cross_sell(
            before, after, bundle, index, segment=segment, ts=TS, policy=POLICY
        )

    small, large = _bundle(8, rng), _bundle(64, rng)
    small_events, large_events = _events(small, rng), _events(large, rng)
    small_index = OfferIndex(small)
    for _ in range(args.rounds):
        today = lambda s, b, a: _choose_today(small, small_index, s, b, a)  # noqa: E731
        rows.setdefault("today's logic, 8 products (baseline)", []).append(
            _per_event(small_events, today)
        )
        rows.setdefault("catalog from the bundle, 8 products", []).append(
            _per_event(small_events, now(small, small_index))
        )
        cold = OfferIndex(large)  # every holdings seen for the first time: a rule scan each
        rows.setdefault("64 products, first sight (rule scan)", []).append(
            _per_event(large_events, now(large, cold))
        )
        rows.setdefault("64 products, holdings seen before", []).append(
            _per_event(large_events, now(large, cold))  # the same index, now warm
        )
    base = statistics.median(next(iter(rows.values())))
    print(
        f"{SEGMENTS} segments x {RULES_PER_SEGMENT} rules, {EVENTS:,} events, {args.rounds} rounds"
    )
    print(f"{'step':<42}{'µs/event (median)':>20}{'ratio':>8}")
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:<42}{median:>20.2f}{median / base:>8.2f}")


if __name__ == "__main__":
    main()
