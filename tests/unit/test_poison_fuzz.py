"""Whatever arrives on an input topic, the pure path gives a state or an InvalidEventError.

The worker dead-letters an InvalidEventError; anything else would be a defect it logs as
an internal error. These properties throw arbitrary bytes, arbitrary JSON and valid
records with one field replaced by arbitrary JSON at the same steps the worker takes.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.alerts import ActiveView
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.event_alerts import after_event
from rules_store.domain.events import InvalidEventError, decode_json, parse_transaction
from rules_store.domain.holdings import (
    CustomerState,
    apply_profile,
    apply_snapshot,
    apply_transaction,
)
from rules_store.domain.offers import OfferIndex
from tests.default_catalog import CATALOG
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail

# A failing example's report would print the trained bundle fixture (43 kB): let it.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
TODAY = date(2026, 11, 30)
CHURN = ChurnPolicy()
VALID = {
    "event_id": "e1",
    "customer_id": "c1",
    "ts": "2026-11-23T10:00:00+08:00",
    "product": "理财",
    "kind": "credit",
    "amount": 100.0,
    "balance": 250.0,
    "branch_id": "b1",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()  # NaN and infinities included
    | st.text(max_size=40)
    | st.sampled_from(["9999-12-31T00:00:00+08:00", "0001-01-01T00:00:00+00:00", "2026-13-01"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()  # NaN/Infinity written as literals


@pytest.fixture(scope="module")
def active(tmp_path_factory: pytest.TempPathFactory) -> ActiveView:
    path: Path = tmp_path_factory.mktemp("fuzz") / "c.del"
    write_retail(generate_retail(800, seed=4, dirty_share=0.0), path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    return ActiveView("v1", bundle, OfferIndex(bundle))


def take_transaction(raw: bytes | None, state: CustomerState, active: Any) -> CustomerState:
    """The worker's steps for one transaction record, without Kafka."""
    tx = parse_transaction(decode_json(raw), CATALOG)
    clocks = PartitionClocks()
    clocks.track(0, state)
    clocks.refuse_far_ahead(0, tx.ts.date(), today=TODAY, max_future_days=1)
    after = apply_transaction(state, tx, catalog=CATALOG, source="t:0", offset=1, churn=CHURN)
    stored, _alerts = after_event(
        state,
        after,
        event_id=tx.event_id,
        ts=tx.ts,
        active=active,
        policy=ContactPolicy(),
        churn=CHURN,
    )
    result = stored or state
    closed = clocks.close_days(0, tx.ts, lambda _c: result, active=active, churn=CHURN)
    return closed[-1][0] if closed else result


def _state_or_invalid(take: Any) -> None:
    with contextlib.suppress(InvalidEventError):
        assert isinstance(take(), CustomerState)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.none() | st.binary(max_size=200))
def test_arbitrary_bytes_give_a_state_or_an_invalid_event(raw: bytes | None, active: Any) -> None:
    _state_or_invalid(lambda: take_transaction(raw, CustomerState("c1"), active))


@FUZZ
@given(value=json_values)
def test_arbitrary_json_gives_a_state_or_an_invalid_event(value: Any, active: Any) -> None:
    _state_or_invalid(lambda: take_transaction(_encode(value), CustomerState("c1"), active))


@FUZZ
@given(field=st.sampled_from([*VALID, "extra"]), value=json_values)
def test_a_valid_transaction_with_any_one_field_replaced_gives_a_state_or_an_invalid_event(
    field: str, value: Any, active: Any
) -> None:
    raw = _encode(VALID | {field: value})
    _state_or_invalid(lambda: take_transaction(raw, CustomerState("c1"), active))


@FUZZ
@given(
    field=st.sampled_from(["年龄", "性别", "存款余额", "as_of", "months", "行业", "branch_id"]),
    value=json_values,
)
def test_a_snapshot_or_profile_row_with_any_one_field_replaced_gives_a_state_or_an_invalid_event(
    field: str, value: Any, active: Any, row: dict[str, Any]
) -> None:
    raw = _encode(row | {field: value})
    schema = active[1].schema
    state = CustomerState("c1")
    _state_or_invalid(
        lambda: (
            apply_snapshot(
                state, decode_json(raw), schema, unknown="code", source="s:0", offset=1, churn=CHURN
            )
            or state
        )
    )
    _state_or_invalid(
        lambda: (
            apply_profile(state, decode_json(raw), schema, unknown="stop", source="p:0", offset=1)
            or state
        )
    )


@pytest.fixture(scope="module")
def row() -> dict[str, Any]:
    record: dict[str, Any] = generate_retail(1, seed=8, dirty_share=0.0).to_dict("records")[0]
    return record | {"as_of": "2026-10-31", "months": {"2026-08": 100.0, "2026-09": 90.0}}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "tombstone"),
        (b"[" * 10_000 + b"]" * 10_000, "nested too deep"),
        (_encode(VALID).replace(b"100.0", b"1" * 5_000), "not JSON"),
        (_encode(VALID).replace(b"100.0", b"1" + b"0" * 400), "within"),
        (_encode(VALID).replace(b"100.0", b"NaN"), "^not JSON: NaN is not a number"),
        (_encode(VALID | {"ts": "9999-12-31T00:00:00+08:00"}), "is outside 1970-01-01"),
        (_encode(VALID | {"ts": "2027-11-30T00:00:00+08:00"}), "XSELL_MAX_FUTURE_DAYS"),
        (_encode(VALID | {"product": "x" * 1_000_000}), "at most 65536 expected"),
        (_encode(VALID | {"product": "x" * 1_000}), "unknown product 'xxxxxx"),
    ],
)
def test_each_record_that_once_stopped_a_worker_is_an_invalid_event_with_a_short_reason(
    raw: bytes | None, reason: str, active: Any
) -> None:
    with pytest.raises(InvalidEventError, match=reason) as caught:
        take_transaction(raw, CustomerState("c1"), active)
    assert len(str(caught.value)) < 400
