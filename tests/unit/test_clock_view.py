"""The partition clocks' fast read of a stored state agrees with the full decode."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

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
        ["due", "latest", '"due": "2026-01-01"', '"latest": null', '"assets": {', "\\", '"', "}"]
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


@settings(max_examples=100)
@given(states)
def test_a_stored_state_is_json_dumps_layout_the_clock_views_fast_read_expects(
    state: CustomerState,
) -> None:
    """A faster encoder must write these very bytes (msgspec's differ: no spaces after
    separators, raw UTF-8, `1e16` for `1e+16`), else every clock view takes the slow path."""
    raw = encode_state(state)
    assert raw == json.dumps(state_to_dict(state)).encode()
    assert raw.startswith(f'{{"format": {STATE_FORMAT}, "customer_id": "'.encode())
