"""Generated events are consistent with their snapshot, deterministic, and plant drainers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.churn import AssetHistory, ChurnPolicy, with_snapshot
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.events import InvalidEventError, decode_json, parse_transaction
from rules_store.domain.holdings import CustomerState, apply_transaction
from tests.default_catalog import CATALOG, FINANCIAL_ASSETS, PRODUCT_BALANCES, financial_assets
from training.event_generator import MALFORMED, EventPlan, generate_events
from training.generate import generate_retail


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    return generate_retail(400, seed=3, dirty_share=0.0)


def _start_balances(snapshot: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(row["客户编号"]): {
            p: float(sum(row[c] for c in cols)) for p, cols in PRODUCT_BALANCES.items()
        }
        for row in snapshot.to_dict("records")
    }


def test_replaying_the_events_on_the_snapshot_reproduces_each_stated_balance(
    snapshot: pd.DataFrame,
) -> None:
    generated = generate_events(snapshot, RETAIL_SCHEMA, EventPlan(days=10, drainers=5, seed=1))
    states = {c: CustomerState(c, b) for c, b in _start_balances(snapshot).items()}
    kinds = set()
    for offset, line in enumerate(generated.lines):
        tx = parse_transaction(decode_json(line), CATALOG)
        kinds.add(tx.kind)
        before = states[tx.customer_id].balances.get(tx.product, 0.0)
        stated = tx.balance
        # Recompute from the running sum, ignoring the stated balance, and compare.
        running = apply_transaction(
            states[tx.customer_id],
            replace(tx, balance=None),
            catalog=CATALOG,
            source="t:0",
            offset=offset,
        )
        assert running is not None
        assert running.balances[tx.product] == pytest.approx(stated, abs=0.011), (before, tx)
        assert stated is not None
        assert stated >= 0
        states[tx.customer_id] = running
    assert kinds == {"open", "close", "credit", "debit"}
    assert [json.loads(x)["ts"] for x in generated.lines] == sorted(
        json.loads(x)["ts"] for x in generated.lines
    )


def test_drainers_move_most_of_their_financial_assets_out(snapshot: pd.DataFrame) -> None:
    generated = generate_events(snapshot, RETAIL_SCHEMA, EventPlan(days=5, drainers=6, seed=2))
    assert len(generated.drainers) == 6
    start = _start_balances(snapshot)
    last: dict[tuple[str, str], float] = {}
    for line in generated.lines:
        event = json.loads(line)
        last[event["customer_id"], event["product"]] = event["balance"]
    for customer in generated.drainers:
        before = sum(start[customer][p] for p in FINANCIAL_ASSETS)
        after = sum(last.get((customer, p), start[customer][p]) for p in FINANCIAL_ASSETS)
        assert before > 10_000
        assert after == pytest.approx(before * 0.1, rel=0.01)


def test_malformed_records_are_all_refused_and_the_same_seed_gives_the_same_file(
    snapshot: pd.DataFrame,
) -> None:
    plan = EventPlan(days=2, drainers=0, malformed=7, seed=4)
    generated = generate_events(snapshot, RETAIL_SCHEMA, plan)
    bad = [line for line in generated.lines if line in MALFORMED]
    assert len(bad) == 7
    assert generated.counts["malformed"] == 7
    for line in bad:
        with pytest.raises(InvalidEventError):
            parse_transaction(decode_json(line), CATALOG)
    assert generate_events(snapshot, RETAIL_SCHEMA, plan).lines == generated.lines
    other = generate_events(snapshot, RETAIL_SCHEMA, EventPlan(days=2, drainers=0, seed=5))
    assert other.lines != [line for line in generated.lines if line not in MALFORMED]


def test_the_churn_test_flags_exactly_the_planted_drainers(snapshot: pd.DataFrame) -> None:
    """Through the stream's own pure steps, one partition: drainers and no one else."""
    plan = EventPlan(days=6, drainers=8, seed=3)
    generated = generate_events(snapshot, RETAIL_SCHEMA, plan)
    assert generated.manifest(plan)["churn_expected"] == generated.drainers
    churn = ChurnPolicy()
    clocks = PartitionClocks()
    states = {}
    for customer, balances in _start_balances(snapshot).items():
        assets = with_snapshot(
            AssetHistory(),
            financial_assets(balances),
            as_of=plan.as_of.isoformat(),
            months=generated.months[customer],
        )
        states[customer] = CustomerState(customer, balances, assets=assets)
        clocks.track(0, states[customer])
    clocks.advance(0, plan.as_of.isoformat())
    for offset, line in enumerate(generated.lines):
        tx = parse_transaction(decode_json(line), CATALOG)
        after = apply_transaction(
            states[tx.customer_id], tx, catalog=CATALOG, source="t:0", offset=offset
        )
        assert after is not None
        states[tx.customer_id] = after
        clocks.track(0, after)
        for closed, _ in clocks.close_days(0, tx.ts, states.__getitem__, active=None, churn=churn):
            states[closed.customer_id] = closed
    flagged = sorted(c for c, state in states.items() if state.assets.alerted_month)
    assert len(generated.drainers) == 8
    assert flagged == generated.drainers


def test_drainers_are_promised_only_from_a_month_start_with_enough_days() -> None:
    assert EventPlan(days=6).flags_drainers
    assert not EventPlan(days=5).flags_drainers
    assert not EventPlan(days=30, start=date(2026, 11, 2)).flags_drainers
    assert EventPlan(start=date(2026, 1, 1)).history_months() == ["2025-12", "2025-11", "2025-10"]
