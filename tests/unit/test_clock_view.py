"""The partition clocks' fast read of a stored state agrees with the full decode."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.domain import state_codec
from rules_store.domain.churn import AssetHistory
from rules_store.domain.holdings import CustomerState
from rules_store.domain.state_codec import (
    STATE_FORMAT,
    ClockView,
    decode_clock_view,
    decode_state,
    encode_state,
    state_to_dict,
)

# Texts with quotes, backslashes and the very keys the fast read looks for.
tricky = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "due",
            "latest",
            '"due": "2026-01-01"',
            '"due":"2026-01-01"',
            '"latest": null',
            '"latest":null',
            '"assets": {',
            '"assets":{',
            "\\",
            '"',
            "}",
        ]
    ),
)
days = st.dates().map(lambda d: d.isoformat())
histories = st.builds(
    AssetHistory,
    days=st.dictionaries(days, st.floats(0, 1e9), max_size=4),
    months=st.dictionaries(days.map(lambda d: d[:7]), st.floats(0, 1e9), max_size=3),
    since=st.none() | days,
    latest=st.none() | days,
    judged=st.none() | days,
    due=st.none() | days,
)
states = st.builds(
    CustomerState,
    customer_id=tricky,
    balances=st.dictionaries(tricky, st.floats(0, 1e9), max_size=3),
    branch_id=st.none() | tricky,
    positions=st.dictionaries(
        st.tuples(st.sampled_from(["x.transactions", "p.q-r_s"]), st.integers(0, 9)).map(
            lambda tp: f"{tp[0]}:{tp[1]}"
        ),
        st.integers(0, 10**9),
        max_size=3,
    ),
    last_offered=st.dictionaries(tricky, tricky, max_size=2),
    alert_day=st.none() | days,
    assets=histories,
    corporate=st.dictionaries(tricky, st.floats(0, 1e9) | tricky, max_size=3),
    corporate_as_of=st.none() | tricky,
)


@settings(max_examples=300)
@given(states)
def test_the_clock_view_of_a_stored_state_has_its_customer_sources_latest_and_due_days(
    state: CustomerState,
) -> None:
    raw = encode_state(state)
    assert decode_clock_view(raw) == ClockView.of(decode_state(raw))
    # As json.dumps stored states before msgspec did: read the same.
    before = json.dumps(state_to_dict(state)).encode()
    assert decode_clock_view(before) == ClockView.of(decode_state(before))


def test_both_layouts_take_the_fast_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast read, not the full decode, answers for either layout (a million states)."""
    monkeypatch.setattr(state_codec, "decode_state", _never)
    for customer in ("c1", "客户1"):  # json.dumps escaped the second: only msgspec's is fast
        state = CustomerState(customer, positions={"x.transactions:3": 7})
        raw = encode_state(state)
        assert raw.startswith(f'{{"format":{STATE_FORMAT},"customer_id":"'.encode())
        assert decode_clock_view(raw) == ClockView(customer, frozenset({3}), None, None)
    before = json.dumps(state_to_dict(CustomerState("c1", positions={"t:3": 7}))).encode()
    assert decode_clock_view(before) == ClockView("c1", frozenset({3}), None, None)


def _never(raw: bytes) -> CustomerState:
    raise AssertionError(raw)
