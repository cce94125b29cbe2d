"""Synthetic core-banking transactions consistent with a retail snapshot.

Each customer starts from the balances of their snapshot row and lives `days` days of
event time: credits and debits on what they hold, now and then a closing (the whole
balance out), and openings of products they lacked, planted with the probabilities
documented in training/openings.py (the forward-in-time truth of `xsell evaluate`). Every event carries the
balance after it, as core banking sends it, and a debit never takes more than the
balance, so replaying the file on top of the snapshot gives non-negative holdings.

Drainers are planted: customers who move 90% of their financial assets out over the
first three days and then go silent (the churn signal), listed in the manifest so tests
know them in advance.

A months table gives every customer three months of history before the start: their
starting financial assets times 0.9-1.1 (1.0-1.1 for drainers). An ordinary customer's
debits and closings never take their financial assets below 70% of where they started,
so no ordinary customer can fall 50%. A drainer falls more than 50% by the fifth day at
the latest: even with the whole drain on day 3, the average of days 1-5 is
(2 x 100% + 3 x 10%) / 5 = 46% of the start, and the baseline is at least the start.
With the start on the first of a month (the default), every drainer is flagged once
the stream reaches day 6.

Malformed records, when asked for, are spread through the file, one of each kind in turn.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from rules_store.bundle.schema import Schema
from rules_store.domain.catalog import Catalog
from training.openings import opening_probabilities

CST = timezone(timedelta(hours=8))  # core banking's local time
BRANCHES = 12
DRAIN_DAYS = 3  # a drainer empties their financial assets over this many days
DRAIN_SHARE = 0.9  # ... taking this share of each balance out
FLOOR = 0.7  # an ordinary customer's financial assets stay above this share of the start
FLAGGED_BY_DAY = 6  # every drainer is flagged once the stream reaches this day
BASELINE_MONTHS = 3


@dataclass(frozen=True)
class EventPlan:
    days: int = 7
    start: date = date(2026, 11, 1)
    events_per_customer_day: float = 0.5
    drainers: int = 10
    malformed: int = 0
    seed: int = 7

    @property
    def as_of(self) -> date:
        """The snapshot's day: the events start the day after."""
        return self.start - timedelta(days=1)

    @property
    def flags_drainers(self) -> bool:
        """Whether the stream is sure to flag every drainer within the plan."""
        return self.start.day == 1 and self.days >= FLAGGED_BY_DAY

    def history_months(self) -> list[str]:
        month, months = self.start.replace(day=1), []
        for _ in range(BASELINE_MONTHS):
            month = (month - timedelta(days=1)).replace(day=1)
            months.append(month.isoformat()[:7])
        return months


@dataclass
class GeneratedEvents:
    lines: list[bytes]  # JSON lines in event-time order, malformed ones included
    drainers: list[str]  # customer ids planted as drainers
    counts: dict[str, int] = field(default_factory=dict)  # by kind, plus "malformed"
    months: dict[str, dict[str, float]] = field(default_factory=dict)  # customer -> history

    def manifest(self, plan: EventPlan) -> dict[str, Any]:
        return {
            "days": plan.days,
            "start": plan.start.isoformat(),
            "as_of": plan.as_of.isoformat(),
            "seed": plan.seed,
            "events": len(self.lines),
            "counts": self.counts,
            "drainers": self.drainers,
            # Churn alerts the stream must raise, and no others (needs a month start).
            "churn_expected": self.drainers if plan.flags_drainers else [],
        }


def branch_of(customer: str) -> str:
    """A stable branch per customer (the snapshot has no branch column)."""
    return f"b{zlib.crc32(customer.encode()) % BRANCHES + 1:02d}"


def _balances(row: dict[str, Any], catalog: Catalog) -> dict[str, float]:
    return {
        p.name: float(sum(float(row.get(column) or 0.0) for column in p.balances))
        for p in catalog.products
    }


def _amount(rng: np.random.Generator, balance: float) -> float:
    """A plausible movement: a lognormal sum, scaled to the balance when there is one."""
    base = balance * rng.uniform(0.02, 0.3) if balance > 0 else rng.lognormal(9.0, 1.0)
    return round(max(base, 100.0), 2)


def _financial(balances: dict[str, float], catalog: Catalog) -> float:
    return sum(balances[p] for p in catalog.financial_assets)


def _planted_openings(
    rng: np.random.Generator,
    row: dict[str, Any],
    balances: dict[str, float],
    plan: EventPlan,
    catalog: Catalog,
) -> dict[int, list[tuple[int, str]]]:
    """Day -> (second of the day, product) of the openings drawn for this customer, with
    the documented probabilities of training/openings.py."""
    held = frozenset(p for p in catalog.names if balances[p] > 0)
    chances = opening_probabilities(catalog.names, row, held, plan.days)
    planned: dict[int, list[tuple[int, str]]] = {}
    for product in catalog.names:
        if chances[product] > 0 and rng.random() < chances[product]:
            day = int(rng.integers(0, plan.days))
            planned.setdefault(day, []).append((int(rng.integers(8 * 3600, 20 * 3600)), product))
    return planned


def _customer_events(
    rng: np.random.Generator,
    customer: str,
    balances: dict[str, float],
    plan: EventPlan,
    planned: dict[int, list[tuple[int, str]]],
    catalog: Catalog,
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    assets = set(catalog.financial_assets)
    floor = FLOOR * _financial(balances, catalog)
    for day in range(plan.days):
        # Times drawn first and sorted, so each event's balance follows the one before.
        moves = rng.integers(8 * 3600, 20 * 3600, rng.poisson(plan.events_per_customer_day))
        for at, opening in sorted(
            [(int(t), "") for t in moves] + planned.get(day, []), key=lambda x: x[0]
        ):
            if opening:
                product, kind, amount = opening, "open", _amount(rng, 0.0)
            else:
                held = [p for p in catalog.names if balances[p] > 0]
                if not held:
                    continue  # nothing to move; openings are planted above
                product = str(rng.choice(held))
                roll = rng.random()
                if roll < 0.03:
                    kind, amount = "close", balances[product]
                elif roll < 0.5:
                    kind, amount = "debit", min(_amount(rng, balances[product]), balances[product])
                else:
                    kind, amount = "credit", _amount(rng, balances[product])
                out = kind in ("close", "debit") and product in assets
                if out and _financial(balances, catalog) - amount < floor:
                    kind, amount = "credit", _amount(rng, balances[product])  # stays above
            change = -amount if kind in ("close", "debit") else amount
            balances[product] = 0.0 if kind == "close" else round(balances[product] + change, 2)
            events.append(
                _event(customer, _at(plan, day, at), rng, product, kind, amount, balances)
            )
    return events


def _drain_events(
    rng: np.random.Generator,
    customer: str,
    balances: dict[str, float],
    plan: EventPlan,
    catalog: Catalog,
) -> list[dict[str, Any]]:
    events = []
    for product in catalog.financial_assets:
        if balances[product] <= 0:
            continue
        total = round(balances[product] * DRAIN_SHARE, 2)
        parts = np.diff(np.round(np.sort(rng.uniform(0, total, DRAIN_DAYS - 1)), 2), prepend=0.0)
        for day, part in enumerate([*parts, total - float(np.sum(parts))]):
            if part <= 0:
                continue
            balances[product] = round(balances[product] - float(part), 2)
            at = _at(plan, day, int(rng.integers(8 * 3600, 20 * 3600)))
            events.append(_event(customer, at, rng, product, "debit", float(part), balances))
    return events


def _at(plan: EventPlan, day: int, seconds: int) -> datetime:
    midnight = datetime.combine(plan.start + timedelta(days=day), datetime.min.time(), CST)
    return midnight + timedelta(seconds=seconds)


def _event(
    customer: str,
    ts: datetime,
    rng: np.random.Generator,
    product: str,
    kind: str,
    amount: float,
    balances: dict[str, float],
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "ts": ts.isoformat(),
        "product": product,
        "kind": kind,
        "amount": round(float(amount), 2),
        "balance": balances[product],
        "branch_id": branch_of(customer),
        "channel": str(rng.choice(["柜面", "网银", "手机银行", "ATM"])),
    }


MALFORMED: tuple[bytes, ...] = (
    b'{"event_id": "bad-json", "customer_id": ',
    json.dumps({"customer_id": "C?", "ts": "2026-11-02T09:00:00+08:00", "kind": "credit"}).encode(),
    json.dumps(
        {
            "event_id": "bad-product",
            "customer_id": "C?",
            "ts": "2026-11-02T09:00:00+08:00",
            "product": "比特币",
            "kind": "credit",
            "amount": 1,
        },
        ensure_ascii=False,
    ).encode(),
    json.dumps(
        {
            "event_id": "bad-amount",
            "customer_id": "C?",
            "ts": "2026-11-02T09:00:00+08:00",
            "product": "国债",
            "kind": "debit",
            "amount": -5,
        },
        ensure_ascii=False,
    ).encode(),
    json.dumps(
        {
            "event_id": "bad-type",
            "customer_id": "C?",
            "ts": "2026-11-02T09:00:00",
            "product": "国债",
            "kind": "credit",
            "amount": "5",
        },
        ensure_ascii=False,
    ).encode(),
)


def generate_events(snapshot: pd.DataFrame, schema: Schema, plan: EventPlan) -> GeneratedEvents:
    """Events for every complete row of `snapshot` (the bank's field names), on the products
    of `schema`'s catalog (the bundle's, in `xsell generate events`)."""
    catalog = schema.products
    rng = np.random.default_rng(plan.seed)
    rows = snapshot[snapshot.notna().all(axis=1)].to_dict("records")
    customers = [str(r[schema.id_column]) for r in rows]
    rich = [i for i, r in enumerate(rows) if _financial(_balances(r, catalog), catalog) > 10_000]
    drainer_rows = set(rng.choice(rich, size=min(plan.drainers, len(rich)), replace=False).tolist())
    history = np.random.default_rng([plan.seed, 1])  # apart, so events do not depend on it
    openings = np.random.default_rng([plan.seed, 2])
    months: dict[str, dict[str, float]] = {}
    events: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        balances = _balances(row, catalog)
        low = 1.0 if i in drainer_rows else 0.9
        months[customers[i]] = {
            month: round(_financial(balances, catalog) * history.uniform(low, 1.1), 2)
            for month in plan.history_months()
        }
        if i in drainer_rows:
            events.extend(_drain_events(rng, customers[i], balances, plan, catalog))
        else:
            planned = _planted_openings(openings, row, balances, plan, catalog)
            events.extend(_customer_events(rng, customers[i], balances, plan, planned, catalog))
    # Event-time order; the sort is stable, so one customer's events keep their order.
    events.sort(key=lambda e: e["ts"])
    counts: dict[str, int] = {}
    lines: list[bytes] = []
    for n, event in enumerate(events):
        counts[event["kind"]] = counts.get(event["kind"], 0) + 1
        lines.append(
            json.dumps({"event_id": f"g{plan.seed}-{n}", **event}, ensure_ascii=False).encode()
        )
    if plan.malformed:
        positions = sorted(rng.integers(0, len(lines) + 1, size=plan.malformed).tolist())
        for k, at in enumerate(reversed(positions)):
            lines.insert(at, MALFORMED[k % len(MALFORMED)])
        counts["malformed"] = plan.malformed
    return GeneratedEvents(lines, sorted(customers[i] for i in drainer_rows), counts, months)
