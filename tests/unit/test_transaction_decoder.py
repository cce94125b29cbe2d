"""The typed decoder (msgspec) and the plain one (json + parse_transaction) agree: the same
transaction for a valid record, the same dead-letter reason, word for word, otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_store.domain.events import (
    InvalidEventError,
    Transaction,
    decode_json,
    decode_transaction,
    parse_transaction,
)
from tests.default_catalog import CATALOG

VALID: dict[str, Any] = {
    "event_id": "e1",
    "customer_id": "c1",
    "ts": "2026-01-05T09:30:00+08:00",
    "product": "国债",
    "kind": "credit",
    "amount": 5000,
    "balance": 7000.5,
    "branch_id": "b01",
    "channel": "app",
}


def _raw(**changes: Any) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def _plain(raw: bytes | None) -> Transaction:
    return parse_transaction(decode_json(raw), CATALOG)


def _typed(raw: bytes | None) -> Transaction:
    return decode_transaction(raw, CATALOG)


def _outcome(decode: Any, raw: bytes | None) -> Transaction | str:
    try:
        return decode(raw)  # type: ignore[no-any-return]
    except InvalidEventError as exc:
        return f"refused: {exc}"


PINNED = [
    (None, "empty record (a tombstone): expected a JSON object"),
    (b"[1]", "expected a JSON object, got list"),
    (b'{"amount": NaN}', "not JSON: NaN is not a number in JSON"),
    (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "not JSON the engine reads: nested too deep"),
    (b'{"event_id": "e1"}', "missing field 'customer_id'"),
    (json.dumps({k: v for k, v in VALID.items() if k != "ts"}).encode(), "missing field 'ts'"),
    (_raw(event_id=7), "field 'event_id' must be a non-empty string, got 7"),
    (_raw(customer_id=" "), "field 'customer_id' must be a non-empty string, got ' '"),
    (
        _raw(ts="2026-01-05T09:30:00"),
        "field 'ts': '2026-01-05T09:30:00' has no UTC offset (e.g. +08:00)",
    ),
    (_raw(ts=None), "field 'ts' must be an ISO 8601 string, got None"),
    (
        _raw(kind="refund"),
        "unknown kind 'refund'; expected one of ['open', 'close', 'credit', 'debit']",
    ),
    (
        _raw(product="gold"),
        f"unknown product 'gold'; expected one of {list(CATALOG.names)}",
    ),
    (_raw(product=5), f"unknown product 5; expected one of {list(CATALOG.names)}"),
    (_raw(amount=-5), "field 'amount' must be >= 0, got -5.0"),
    (_raw(amount="5"), "field 'amount' must be a finite number, got '5'"),
    (_raw(amount=True), "field 'amount' must be a finite number, got True"),
    (_raw(amount=1e20), "field 'amount' must be a finite number within ±1e+15, got 1e+20"),
    (
        _raw(balance=7).replace(b'"balance": 7', b'"balance": 1e400'),
        "field 'balance' must be a finite number within ±1e+15, got inf",
    ),
    (_raw(channel="x" * 300), "field 'channel' must be at most 256 characters, got 300"),
]


@pytest.mark.parametrize(("raw", "reason"), PINNED)
def test_both_decoders_give_the_pinned_dead_letter_reason(raw: bytes | None, reason: str) -> None:
    assert _outcome(_typed, raw) == f"refused: {reason}"
    assert _outcome(_plain, raw) == f"refused: {reason}"


def test_a_valid_record_gives_the_same_transaction() -> None:
    raw = _raw()
    assert _typed(raw) == _plain(raw)
    assert _typed(_raw(balance=None, amount=12)) == _plain(_raw(balance=None, amount=12))


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(["2026-01-05T09:30:00+08:00", "国债", "debit", "x" * 300, ""]),
    st.lists(st.integers(), max_size=2),
)


@given(
    st.dictionaries(st.sampled_from(sorted(VALID)), values, max_size=4),
    st.sets(st.sampled_from(sorted(VALID))),
)
def test_the_decoders_agree_on_any_change_to_a_valid_record(
    changes: dict[str, Any], dropped: set[str]
) -> None:
    record = {k: v for k, v in {**VALID, **changes}.items() if k not in dropped}
    raw = json.dumps(record).encode()
    assert _outcome(_typed, raw) == _outcome(_plain, raw)
