"""A customer's holdings as the stream keeps them, and how one event changes them.

Updates are idempotent: the state remembers, per source partition, the offset of the last
event it applied, and an event at or before that offset is a repeat (a worker restarted
after a crash re-reads events whose effects its table already holds). When core banking
sends the balance after the event, that balance wins over the running sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rules_store.bundle.schema import Schema, SchemaError, encode_profile
from rules_store.domain.catalog import CORPORATE_FIELDS, CORPORATE_TEXT_FIELDS, Catalog
from rules_store.domain.churn import (
    DEFAULT_CHURN,
    AssetHistory,
    ChurnFigures,
    ChurnPolicy,
    is_late,
    on_event,
    snapshot_history,
    with_snapshot,
)
from rules_store.domain.events import InvalidEventError, Transaction
from rules_store.domain.frozen import evolve
from rules_store.domain.outcomes import OfferLedger
from rules_store.validation import finite_number, short_text


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    # product -> balance, by name: a product a later catalog drops keeps its balance
    # (ignored), one it adds starts empty.
    balances: Mapping[str, float] = field(default_factory=dict)
    branch_id: str | None = None
    positions: Mapping[str, int] = field(default_factory=dict)  # "topic:partition" -> offset
    features: tuple[float, ...] | None = None  # encoded segmentation fields, once known
    last_offered: Mapping[str, str] = field(default_factory=dict)  # product -> last alert ts
    alert_day: str | None = None  # event-time day of `alerts_on_day`
    alerts_on_day: int = 0
    assets: AssetHistory = field(default_factory=AssetHistory)  # for the churn test
    # Corporate fields of the last snapshot row that carried any (the churn model's
    # inputs), and that row's `as_of`.
    corporate: Mapping[str, float | str] = field(default_factory=dict)
    corporate_as_of: str | None = None
    offers: OfferLedger = field(default_factory=OfferLedger)  # sent offers and their outcomes

    @property
    def churn_risk(self) -> ChurnFigures | None:
        """The churn alert's figures while the customer is flagged at churn risk."""
        return self.assets.risk

    def held_in(self, catalog: Catalog) -> int:
        """Held products as a bitmask of `catalog`: a non-zero balance, as in the batch."""
        return catalog.held(self.balances)

    def financial_assets_in(self, catalog: Catalog) -> float:
        """Financial-asset balances summed, unrounded, in catalog order (as training sums
        them for the customer value)."""
        total = 0.0
        for name in catalog.financial_assets:
            total += self.balances.get(name, 0.0)
        return total


def apply_transaction(
    state: CustomerState,
    tx: Transaction,
    *,
    catalog: Catalog,
    source: str,
    offset: int,
    churn: ChurnPolicy = DEFAULT_CHURN,
) -> CustomerState | None:
    """The state after `tx`, or None when this source position was already applied.

    A late event (dated before days already recorded) moves balances by its amount: its
    `balance` field is the balance back then, not now. One dated before the grace period
    raises TooLateError.

    >>> from datetime import datetime, timezone
    >>> from rules_store.domain.catalog import demo_catalog
    >>> tx = Transaction("e1", "c1", datetime.now(timezone.utc), "fund", "credit", 100.0)
    >>> after = apply_transaction(CustomerState("c1"), tx, catalog=demo_catalog(), source="t:0", offset=7)
    >>> after.balances["fund"], apply_transaction(after, tx, catalog=demo_catalog(), source="t:0", offset=7)
    (100.0, None)
    """
    if state.positions.get(source, -1) >= offset:
        return None
    day = tx.ts.date().isoformat()
    late = is_late(state.assets, day)
    balance = state.balances.get(tx.product, 0.0)
    if tx.kind in ("open", "credit"):  # an opening with no money yet holds nothing
        balance += tx.amount
    elif tx.kind == "close":
        balance = 0.0
    else:  # debit
        balance -= tx.amount
    if tx.balance is not None and tx.kind != "close" and not late:
        balance = tx.balance
    balances = dict(state.balances)
    balances[tx.product] = balance
    return evolve(
        state,
        balances=balances,
        branch_id=tx.branch_id or state.branch_id,
        positions={**state.positions, source: offset},
        assets=on_event(state.assets, day, catalog.financial_total(balances), churn),
    )


def apply_snapshot(
    state: CustomerState,
    record: Mapping[str, Any],
    schema: Schema,
    *,
    unknown: str,
    source: str,
    offset: int,
    churn: ChurnPolicy = DEFAULT_CHURN,
) -> CustomerState | None:
    """A snapshot row (the bank's field names) sets balances and profile; None if a repeat.

    A product's balance is the sum of its balance columns (the schema's catalog), so it is
    held exactly when the batch's `holdings_from_balances` says it is (balances are not
    negative). Balances of products outside the catalog are kept. The row may
    carry balance history for the churn test: `as_of` and `months` (see churn.py), and
    the corporate fields the churn model reads (`CORPORATE_FIELDS`).
    """
    as_of, months = snapshot_history(record)
    corporate = corporate_fields(record)
    catalog = schema.products
    balances = dict(state.balances)
    for product in catalog.products:
        total = 0.0
        for column in product.balances:
            value = record.get(column, 0.0)
            total += finite_number(value, f"snapshot field {column!r}", InvalidEventError)
        balances[product.name] = total
    profiled = apply_profile(state, record, schema, unknown=unknown, source=source, offset=offset)
    if profiled is None:
        return None
    assets = with_snapshot(
        profiled.assets,
        catalog.financial_total(balances),
        as_of=as_of,
        months=months,
        policy=churn,
    )
    if corporate:
        profiled = evolve(profiled, corporate=corporate, corporate_as_of=as_of)
    return evolve(profiled, balances=balances, assets=assets)


def corporate_fields(
    record: Mapping[str, Any], *, where: str = "snapshot field"
) -> dict[str, float | str]:
    """The corporate fields a record carries (blank ones left out), checked."""
    kept: dict[str, float | str] = {}
    for name in CORPORATE_FIELDS:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name in CORPORATE_TEXT_FIELDS:
            kept[name] = short_text(value, f"{where} {name!r}", InvalidEventError).strip()
        else:
            kept[name] = finite_number(value, f"{where} {name!r}", InvalidEventError)
    return kept


def record_alert(state: CustomerState, *, product: str, ts: datetime) -> CustomerState:
    """Note an offer sent to the customer: for the cool-down and the daily count."""
    day = ts.date().isoformat()
    return evolve(
        state,
        last_offered={**state.last_offered, product: ts.isoformat()},
        alert_day=day,
        alerts_on_day=state.alerts_on_day + 1 if state.alert_day == day else 1,
    )


def apply_profile(
    state: CustomerState,
    record: Mapping[str, Any],
    schema: Schema,
    *,
    unknown: str,
    source: str,
    offset: int,
) -> CustomerState | None:
    """A profile event (the segmentation fields) replaces the encoded profile; None if a repeat."""
    if state.positions.get(source, -1) >= offset:
        return None
    try:
        features = encode_profile(schema, record, unknown=unknown)
    except SchemaError as exc:
        raise InvalidEventError(f"profile: {exc}") from exc
    branch = record.get("branch_id")
    return evolve(
        state,
        features=features,
        branch_id=branch if isinstance(branch, str) and branch else state.branch_id,
        positions={**state.positions, source: offset},
    )
