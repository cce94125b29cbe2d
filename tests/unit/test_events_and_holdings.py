"""Event validation and idempotent holdings updates (the stream's pure core)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_store.bundle.schema import RETAIL_SCHEMA, encode_profile
from rules_store.domain.alerts import alert_id
from rules_store.domain.events import (
    KINDS,
    InvalidEventError,
    Transaction,
    decode_json,
    parse_transaction,
)
from rules_store.domain.holdings import CustomerState, apply_snapshot, apply_transaction
from rules_store.domain.state_codec import decode_state, encode_state
from tests.default_catalog import CATALOG, PRODUCTS, holdings_from_balances, products_to_mask
from training.generate import generate_retail

GOOD = {
    "event_id": "e-1",
    "customer_id": "c-1",
    "ts": "2026-11-23T09:30:00+08:00",
    "product": "国债",
    "kind": "credit",
    "amount": 5000,
    "branch_id": "0755-01",
}


def test_a_valid_transaction_is_parsed_with_its_offset() -> None:
    tx = parse_transaction(GOOD, CATALOG)
    assert tx.amount == 5000.0
    assert tx.ts.utcoffset() is not None
    assert tx.branch_id == "0755-01"
    assert tx.balance is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_id": None}, "missing field 'event_id'"),
        ({"customer_id": ""}, "'customer_id' must be a non-empty string"),
        ({"ts": "2026-11-23T09:30:00"}, "has no UTC offset"),
        ({"ts": "yesterday"}, "is not ISO 8601"),
        ({"ts": 1700000000}, "must be an ISO 8601 string"),
        ({"product": "比特币"}, "unknown product '比特币'"),
        ({"kind": "transfer"}, "unknown kind 'transfer'"),
        ({"amount": -1}, "'amount' must be >= 0"),
        ({"amount": "100"}, "'amount' must be a finite number"),
        ({"amount": True}, "'amount' must be a finite number"),
        ({"balance": float("nan")}, "'balance' must be a finite number"),
        ({"channel": 7}, "'channel' must be a non-empty string"),
    ],
)
def test_invalid_transactions_name_the_field_and_the_value(
    change: dict[str, Any], expected: str
) -> None:
    event = {**GOOD, **change}
    event = {k: v for k, v in event.items() if v is not None}
    with pytest.raises(InvalidEventError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_transaction(event, CATALOG)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"{not json", "not JSON"), (b"[1, 2]", "expected a JSON object"), (b"\xff\xfe", "not JSON")],
)
def test_undecodable_records_are_invalid_events(raw: bytes, expected: str) -> None:
    with pytest.raises(InvalidEventError, match=expected):
        decode_json(raw)


def _tx(product: str, kind: str, amount: float, balance: float | None = None) -> Transaction:
    return Transaction("e", "c", datetime(2026, 1, 1, tzinfo=UTC), product, kind, amount, balance)


def test_open_credit_debit_close_move_balances_and_holdings() -> None:
    state = CustomerState("c")
    steps = [
        (_tx("理财", "open", 0), 0),  # opened, no money yet: not held (as in the batch)
        (_tx("理财", "credit", 300), products_to_mask(["理财"])),
        (_tx("存款", "credit", 50), products_to_mask(["理财", "存款"])),
        (_tx("存款", "debit", 50), products_to_mask(["理财"])),  # back to zero: not held
        (_tx("理财", "close", 0), 0),
    ]
    for offset, (tx, held) in enumerate(steps):
        after = apply_transaction(state, tx, catalog=CATALOG, source="t:0", offset=offset)
        assert after is not None
        state = after
        assert state.held_in(CATALOG) == held, tx
    assert state.balances == {"理财": 0.0, "存款": 0.0}


def test_the_balance_sent_by_core_banking_wins_over_the_running_sum() -> None:
    state = apply_transaction(
        CustomerState("c"),
        _tx("贷款和信用卡", "debit", 10, balance=120_000),
        catalog=CATALOG,
        source="t:0",
        offset=0,
    )
    assert state is not None
    assert state.balances["贷款和信用卡"] == 120_000


events = st.lists(
    st.tuples(
        st.sampled_from(PRODUCTS),
        st.sampled_from(KINDS),
        st.integers(0, 1000),
        st.none() | st.integers(0, 5000),
    ),
    max_size=40,
)


@given(events, st.lists(st.integers(0, 40), max_size=4))
def test_replaying_after_a_crash_leaves_the_same_state_as_no_crash(
    sequence: list[tuple[str, str, int, int | None]], crash_points: list[int]
) -> None:
    txs = [_tx(p, k, float(a), None if b is None else float(b)) for p, k, a, b in sequence]

    def run(restarts: list[int]) -> CustomerState:
        state = CustomerState("c")
        committed = 0
        for crash in [*sorted(restarts), len(txs)]:
            # Process up to the crash; on restart, re-read from the last committed offset
            # (here: half way), with the table already holding everything applied.
            for offset in range(committed, min(crash, len(txs))):
                after = apply_transaction(
                    state, txs[offset], catalog=CATALOG, source="t:3", offset=offset
                )
                if after is not None:
                    state = after
            committed = min(crash, len(txs)) // 2
        return state

    assert run(crash_points) == run([])


def test_state_survives_its_json_form() -> None:
    state = apply_transaction(
        CustomerState("c", branch_id="b1"),
        _tx("保险", "open", 10),
        catalog=CATALOG,
        source="t:1",
        offset=4,
    )
    assert state is not None
    assert decode_state(encode_state(state)) == state


def test_a_snapshot_row_gives_the_batchs_holdings_and_encoding() -> None:
    for row in generate_retail(200, seed=8, dirty_share=0.0).to_dict("records"):
        state = apply_snapshot(
            CustomerState(row["客户编号"]),
            row,
            RETAIL_SCHEMA,
            unknown="stop",
            source="s:0",
            offset=1,
        )
        assert state is not None
        assert state.held_in(CATALOG) == holdings_from_balances(row)
        assert state.features == encode_profile(RETAIL_SCHEMA, row)
        assert (
            apply_snapshot(state, row, RETAIL_SCHEMA, unknown="stop", source="s:0", offset=1)
            is None
        )


def test_a_snapshot_row_with_a_bad_balance_or_field_is_an_invalid_event() -> None:
    row = generate_retail(1, seed=3, dirty_share=0.0).to_dict("records")[0]
    with pytest.raises(InvalidEventError, match="'国债余额' must be a finite number"):
        apply_snapshot(
            CustomerState("c"),
            {**row, "国债余额": "many"},
            RETAIL_SCHEMA,
            unknown="stop",
            source="s:0",
            offset=1,
        )
    with pytest.raises(InvalidEventError, match="风险评级"):
        apply_snapshot(
            CustomerState("c"),
            {**row, "风险评级": "极高"},
            RETAIL_SCHEMA,
            unknown="stop",
            source="s:0",
            offset=1,
        )


def test_alert_ids_are_the_same_for_the_same_trigger_and_differ_otherwise() -> None:
    assert alert_id("cross_sell", "c1", "e1", "v1", "国债") == alert_id(
        "cross_sell", "c1", "e1", "v1", "国债"
    )
    assert alert_id("cross_sell", "c1", "e1", "v1", "国债") != alert_id(
        "cross_sell", "c1", "e2", "v1", "国债"
    )
    assert alert_id("a", "bc") != alert_id("ab", "c")
