"""Events from core banking, validated before anything touches state.

Every failure is an `InvalidEventError` whose message says which field, what arrived and
what was expected: the stream routes it, with the raw bytes, to the dead-letter topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from rules_store.domain.catalog import Catalog
from rules_store.errors import XsellError
from rules_store.validation import (
    finite_number,
    is_finite_number,
    is_short_text,
    plausible_day,
    short_text,
    show,
)

KINDS = ("open", "close", "credit", "debit")
T = TypeVar("T")
MAX_RECORD_BYTES = 64 * 1024  # a transaction is ~300 bytes, a snapshot row with history ~3 KB


class InvalidEventError(XsellError, ValueError):
    """An event that fails validation; never stops a worker."""


@dataclass(frozen=True)
class Transaction:
    event_id: str
    customer_id: str
    ts: datetime  # timezone-aware
    product: str
    kind: str
    amount: float
    balance: float | None = (
        None  # the product's balance after the event, when core banking sends it
    )
    branch_id: str | None = None
    channel: str | None = None


def _refuse_constant(name: str) -> Any:
    msg = f"not JSON: {name} is not a number in JSON"
    raise InvalidEventError(msg)


# Built once: json.loads with a hook would build a decoder per call (a third of the cost).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def decode_json(raw: bytes | str | None) -> dict[str, Any]:
    """A JSON object, or an InvalidEventError saying why not (whatever arrived).

    >>> decode_json(None)
    Traceback (most recent call last):
    ...
    rules_store.domain.events.InvalidEventError: empty record (a tombstone): expected a JSON object
    """
    if raw is None:
        msg = "empty record (a tombstone): expected a JSON object"
        raise InvalidEventError(msg)
    if len(raw) > MAX_RECORD_BYTES:
        msg = f"record of {len(raw)} bytes; at most {MAX_RECORD_BYTES} expected"
        raise InvalidEventError(msg)
    try:
        value = _DECODER.decode(raw.decode() if isinstance(raw, bytes) else raw)
    except InvalidEventError:  # a NaN or Infinity literal, refused by _refuse_constant
        raise
    except RecursionError:
        msg = "not JSON the engine reads: nested too deep"
        raise InvalidEventError(msg) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        msg = f"not JSON: {exc}"
        raise InvalidEventError(msg) from exc
    if not isinstance(value, dict):
        msg = f"expected a JSON object, got {type(value).__name__}"
        raise InvalidEventError(msg)
    return value


def _field(
    event: Mapping[str, Any],
    name: str,
    check: Callable[[Any, str, type[Exception]], T],
    *,
    required: bool = True,
) -> T | None:
    """The field checked by `check` (a validation function), None when optional and absent."""
    value = event.get(name)
    if value is None:
        if required:
            msg = f"missing field {name!r}"
            raise InvalidEventError(msg)
        return None
    return check(value, f"field {name!r}", InvalidEventError)


def customer_of(record: Mapping[str, Any], id_column: str) -> str:
    """The customer a profile or snapshot row is about: `customer_id`, else the schema's id column.

    >>> customer_of({"客户编号": "c9"}, "客户编号")
    'c9'
    """
    customer = record.get("customer_id", record.get(id_column))
    if customer is None:
        msg = f"missing field 'customer_id' (or {id_column!r})"
        raise InvalidEventError(msg)
    return short_text(customer, f"field 'customer_id' (or {id_column!r})", InvalidEventError)


def parse_timestamp(value: Any, name: str = "ts") -> datetime:
    """ISO 8601 with a UTC offset; a time without an offset is ambiguous and refused."""
    if not isinstance(value, str) or len(value) > 64:
        msg = f"field {name!r} must be an ISO 8601 string, got {show(value)}"
        raise InvalidEventError(msg)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        msg = f"field {name!r}: {value!r} is not ISO 8601"
        raise InvalidEventError(msg) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        msg = f"field {name!r}: {value!r} has no UTC offset (e.g. +08:00)"
        raise InvalidEventError(msg)
    plausible_day(parsed.date(), f"field {name!r}", InvalidEventError)
    return parsed


def parse_transaction(event: Mapping[str, Any], catalog: Catalog) -> Transaction:
    """Validate a decoded transaction event; its product is one of `catalog`'s.

    >>> from rules_store.domain.catalog import demo_catalog
    >>> parse_transaction({"event_id": "e1", "customer_id": "c1", "ts": "2026-01-05T09:30:00+08:00",
    ...     "product": "fund", "kind": "credit", "amount": 5000}, demo_catalog()).amount
    5000.0
    """
    if "ts" not in event:
        _field(event, "event_id", short_text)  # the ids are checked before a missing ts
        _field(event, "customer_id", short_text)
        msg = "missing field 'ts'"
        raise InvalidEventError(msg)
    return _checked(
        event.get("event_id"),
        event.get("customer_id"),
        event.get("ts"),
        event.get("product"),
        event.get("kind"),
        event.get("amount"),
        event.get("balance"),
        event.get("branch_id"),
        event.get("channel"),
        catalog,
    )


def _checked(
    event_id: Any,
    customer_id: Any,
    ts: Any,
    product: Any,
    kind: Any,
    amount: Any,
    balance: Any,
    branch_id: Any,
    channel: Any,
    catalog: Catalog,
) -> Transaction:
    """The checks of a transaction's fields, in the order that decides which error is
    reported, whichever decoder read them."""
    checked_id = _required(event_id, "event_id", short_text)
    checked_customer = _required(customer_id, "customer_id", short_text)
    moment = parse_timestamp(ts)
    if not isinstance(product, str) or product not in catalog.bits:
        msg = f"unknown product {show(product)}; expected one of {list(catalog.names)}"
        raise InvalidEventError(msg)
    if kind not in KINDS:
        msg = f"unknown kind {show(kind)}; expected one of {list(KINDS)}"
        raise InvalidEventError(msg)
    checked_amount = _required(amount, "amount", finite_number)
    if checked_amount < 0:
        msg = f"field 'amount' must be >= 0, got {checked_amount}"
        raise InvalidEventError(msg)
    return Transaction(
        event_id=checked_id,
        customer_id=checked_customer,
        ts=moment,
        product=product,
        kind=kind,
        amount=checked_amount,
        balance=None if balance is None else finite_number(balance, _BALANCE, InvalidEventError),
        branch_id=None if branch_id is None else short_text(branch_id, _BRANCH, InvalidEventError),
        channel=None if channel is None else short_text(channel, _CHANNEL, InvalidEventError),
    )


_BALANCE, _BRANCH, _CHANNEL = "field 'balance'", "field 'branch_id'", "field 'channel'"


def _required(value: Any, name: str, check: Callable[[Any, str, type[Exception]], T]) -> T:
    if value is None:
        msg = f"missing field {name!r}"
        raise InvalidEventError(msg)
    return check(value, f"field {name!r}", InvalidEventError)


class _TransactionFields(msgspec.Struct):
    """A transaction as JSON types it; bounds and vocabularies are `_checked`'s."""

    event_id: str
    customer_id: str
    ts: str
    product: str
    kind: str
    amount: int | float
    balance: int | float | None = None
    branch_id: str | None = None
    channel: str | None = None


_TRANSACTION_DECODER = msgspec.json.Decoder(_TransactionFields)


def _plain(f: _TransactionFields, catalog: Catalog) -> bool:
    """Whether `_checked` accepts `f`'s fields other than the timestamp (typed by msgspec),
    asked without the checks' messages: the usual record's fast path."""
    return (
        is_short_text(f.event_id)
        and is_short_text(f.customer_id)
        and f.product in catalog.bits
        and f.kind in KINDS
        and is_finite_number(f.amount)
        and f.amount >= 0
        and (f.balance is None or is_finite_number(f.balance))
        and (f.branch_id is None or is_short_text(f.branch_id))
        and (f.channel is None or is_short_text(f.channel))
    )


def decode_transaction(raw: bytes | None, catalog: Catalog) -> Transaction:
    """`parse_transaction(decode_json(raw), catalog)` in one step, for the usual record: msgspec
    decodes and types it, then the same checks run. A record msgspec refuses (malformed,
    a field missing or of another type, a number out of range) is read again the slow way,
    so a dead letter's reason is the same whichever decoder met it.

    >>> from rules_store.domain.catalog import demo_catalog
    >>> decode_transaction(b'{"event_id": "e1", "customer_id": "c1", "product": "fund",'
    ...     b' "ts": "2026-01-05T09:30:00+08:00", "kind": "credit", "amount": 5000}',
    ...     demo_catalog()).amount
    5000.0
    >>> decode_transaction(b'{"event_id": "e1"}', demo_catalog())
    Traceback (most recent call last):
    ...
    rules_store.domain.events.InvalidEventError: missing field 'customer_id'
    """
    if raw is None or len(raw) > MAX_RECORD_BYTES:
        return parse_transaction(decode_json(raw), catalog)
    try:
        f = _TRANSACTION_DECODER.decode(raw)
    except (msgspec.MsgspecError, RecursionError):  # msgspec raises the latter when deep
        return parse_transaction(decode_json(raw), catalog)
    if _plain(f, catalog):  # every check passes but the timestamp's: no message to build
        return Transaction(
            f.event_id,
            f.customer_id,
            parse_timestamp(f.ts),
            f.product,
            f.kind,
            float(f.amount),
            None if f.balance is None else float(f.balance),
            f.branch_id,
            f.channel,
        )
    return _checked(
        f.event_id,
        f.customer_id,
        f.ts,
        f.product,
        f.kind,
        f.amount,
        f.balance,
        f.branch_id,
        f.channel,
        catalog,
    )
