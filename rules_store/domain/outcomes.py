"""What became of the offers a customer was sent: the ledger kept in the customer's state.

An offer stays *pending* from its alert until an outcome settles it: an explicit answer
(accepted, declined, ignored), an `open` of the offered product within the attribution
window (an inferred acceptance), or the end of that window with neither (ignored). Each
alert settles once: its id is remembered, settled, for a second window, so a
replayed outcome or a second answer after an inferred conversion counts nothing.

A declined product is not offered to that customer again for the decline cool-down.
Everything is by event time, like the churn test, so a replay decides the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from rules_store.domain.acceptance import OUTCOMES, ArmKey, Outcome
from rules_store.domain.events import InvalidEventError, parse_timestamp
from rules_store.validation import short_text, show

ALERT_HASH_LENGTH = 32


def offer_alert_id(customer_id: str, digest: str) -> str:
    """A cross-sell alert's id: its customer, then the digest of what triggered it.

    >>> offer_alert_id("C9", "0" * 32) == "C9:" + "0" * 32
    True
    """
    return f"{customer_id}:{digest}"


def customer_of_alert(alert_id: str) -> str:
    """The customer an offer's alert id names (`<customer id>:<32 hex>`).

    An outcome names only its alert; the id names the customer so that the outcome is
    routed to the partition that holds the customer's offers, without a lookup.

    >>> customer_of_alert("C:7:" + "a" * 32)
    'C:7'
    """
    customer, sep, digest = alert_id.rpartition(":")
    if not sep or not customer or len(digest) != ALERT_HASH_LENGTH:
        msg = (
            f"alert id {show(alert_id)} is not an offer's alert id"
            f" (expected '<customer id>:<{ALERT_HASH_LENGTH} hex digits>')"
        )
        raise InvalidEventError(msg)
    try:
        int(digest, 16)
    except ValueError:
        msg = f"alert id {show(alert_id)}: {digest!r} is not hexadecimal"
        raise InvalidEventError(msg) from None
    return customer


@dataclass(frozen=True)
class OutcomeReport:
    """One record of the outcomes topic."""

    alert_id: str
    customer_id: str
    outcome: Outcome
    ts: datetime
    channel: str | None = None
    branch_id: str | None = None


def parse_outcome(record: Mapping[str, Any]) -> OutcomeReport:
    """Validate a decoded outcome record.

    >>> parse_outcome({"alert_id": "c1:" + "0" * 32, "outcome": "accepted",
    ...                "ts": "2026-11-02T10:00:00+08:00", "channel": "branch"}).customer_id
    'c1'
    >>> parse_outcome({"alert_id": "c1:" + "0" * 32, "outcome": "maybe",
    ...                "ts": "2026-11-02T10:00:00+08:00"})
    Traceback (most recent call last):
    ...
    rules_store.domain.events.InvalidEventError: unknown outcome 'maybe'; expected one of ['accepted', 'declined', 'ignored']
    """
    alert_id = record.get("alert_id")
    if alert_id is None:
        msg = "missing field 'alert_id'"
        raise InvalidEventError(msg)
    alert_id = short_text(alert_id, "field 'alert_id'", InvalidEventError)
    customer_id = customer_of_alert(alert_id)
    outcome = record.get("outcome")
    if outcome not in OUTCOMES:
        msg = f"unknown outcome {show(outcome)}; expected one of {list(OUTCOMES)}"
        raise InvalidEventError(msg)
    if "ts" not in record:
        msg = "missing field 'ts'"
        raise InvalidEventError(msg)
    optional = {
        name: short_text(record[name], f"field {name!r}", InvalidEventError)
        for name in ("channel", "branch_id")
        if record.get(name) is not None
    }
    return OutcomeReport(
        alert_id=alert_id,
        customer_id=customer_id,
        outcome=outcome,
        ts=parse_timestamp(record["ts"]),
        **optional,
    )


def outcome_record(report: OutcomeReport) -> dict[str, Any]:
    """The outcomes topic's JSON for a report (read back by `parse_outcome`)."""
    record: dict[str, Any] = {
        "alert_id": report.alert_id,
        "outcome": report.outcome,
        "ts": report.ts.isoformat(),
    }
    if report.channel is not None:
        record["channel"] = report.channel
    if report.branch_id is not None:
        record["branch_id"] = report.branch_id
    return record


class UnknownAlertError(InvalidEventError):
    """An outcome for an alert this customer was never sent (or sent before the window)."""


@dataclass(frozen=True)
class SentOffer:
    product: str
    ts: str  # the alert's event time, ISO 8601
    bundle_version: str
    segment: int
    arm: str
    by: str  # the event that sent it, "topic:partition@offset"

    @property
    def key(self) -> ArmKey:
        return ArmKey(self.bundle_version, self.segment, self.product)


@dataclass(frozen=True)
class SettledOffer:
    offer: SentOffer
    outcome: Outcome
    by: str  # the event that settled it (an answer, an opening, the one past the window)


class Settlement(NamedTuple):
    """An offer's outcome, counted once: what the acceptance book adds."""

    alert_id: str
    offer: SentOffer
    outcome: Outcome
    inferred: bool  # an opening within the window, or the window's end, not an answer


@dataclass(frozen=True)
class OfferLedger:
    pending: Mapping[str, SentOffer] = field(default_factory=dict)  # alert id -> offer
    # Settled offers, kept for two windows after the offer: an answer arriving after the
    # window closed the offer as ignored is known as a repeat.
    settled: Mapping[str, SettledOffer] = field(default_factory=dict)
    declined: Mapping[str, str] = field(default_factory=dict)  # product -> last decline ts

    def caused_by(self, by: str) -> tuple[list[ArmKey], list[tuple[ArmKey, Outcome]]]:
        """The offers an event sent and the outcomes it settled, as this ledger records them:
        what to count when the state already holds the event and the counts do not."""
        sent = [o.key for o in self.pending.values() if o.by == by]
        sent += [s.offer.key for s in self.settled.values() if s.offer.by == by]
        settled = [(s.offer.key, s.outcome) for s in self.settled.values() if s.by == by]
        return sent, settled


@dataclass(frozen=True)
class OutcomePolicy:
    """`XSELL_ATTRIBUTION_DAYS` and `XSELL_DECLINE_COOLDOWN_DAYS` in the settings."""

    attribution_days: int = 30
    decline_cooldown_days: int = 90

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.attribution_days)


def record_offer(ledger: OfferLedger, alert_id: str, offer: SentOffer) -> OfferLedger:
    """The ledger with a sent offer pending (a re-sent alert changes nothing)."""
    if alert_id in ledger.pending or alert_id in ledger.settled:
        return ledger
    return replace(ledger, pending={**ledger.pending, alert_id: offer})


def _settle(
    ledger: OfferLedger, alert_id: str, outcome: Outcome, ts: datetime, *, by: str, inferred: bool
) -> tuple[OfferLedger, Settlement]:
    offer = ledger.pending[alert_id]
    pending = {k: v for k, v in ledger.pending.items() if k != alert_id}
    declined = ledger.declined
    if outcome == "declined":
        declined = {**declined, offer.product: ts.isoformat()}
    settled = {**ledger.settled, alert_id: SettledOffer(offer, outcome, by)}
    return OfferLedger(pending, settled, declined), Settlement(alert_id, offer, outcome, inferred)


def settle_outcome(
    ledger: OfferLedger, report: OutcomeReport, *, by: str
) -> tuple[OfferLedger, Settlement | None]:
    """The ledger after an explicit answer, and what it settles (None: settled already)."""
    if report.alert_id in ledger.settled:
        return ledger, None
    if report.alert_id not in ledger.pending:
        msg = (
            f"unknown alert {report.alert_id!r} for customer {report.customer_id!r}:"
            " not an offer sent to them within the attribution window"
        )
        raise UnknownAlertError(msg)
    return _settle(ledger, report.alert_id, report.outcome, report.ts, by=by, inferred=False)


def attribute_opening(
    ledger: OfferLedger, product: str, ts: datetime, policy: OutcomePolicy, *, by: str
) -> tuple[OfferLedger, list[Settlement]]:
    """An `open` of `product` at `ts` accepts its pending offers sent within the window before."""
    settlements = []
    for alert_id, offer in sorted(ledger.pending.items()):
        sent = datetime.fromisoformat(offer.ts)
        if offer.product == product and sent <= ts <= sent + policy.window:
            ledger, settlement = _settle(ledger, alert_id, "accepted", ts, by=by, inferred=True)
            settlements.append(settlement)
    return ledger, settlements


def expire_offers(
    ledger: OfferLedger, now: datetime, policy: OutcomePolicy, *, by: str
) -> tuple[OfferLedger, list[Settlement]]:
    """Offers past the window with no outcome are ignored; settled ids past two windows are
    forgotten. Declines are kept (one per product at most): forgetting one in the middle of
    a batch would let an earlier event of the batch, decided at its end, offer it."""
    settlements = []
    for alert_id, offer in sorted(ledger.pending.items()):
        if now > datetime.fromisoformat(offer.ts) + policy.window:
            ledger, settlement = _settle(ledger, alert_id, "ignored", now, by=by, inferred=True)
            settlements.append(settlement)
    settled = {
        k: s
        for k, s in ledger.settled.items()
        if now <= datetime.fromisoformat(s.offer.ts) + 2 * policy.window
    }
    if len(settled) == len(ledger.settled):
        return ledger, settlements
    return OfferLedger(ledger.pending, settled, ledger.declined), settlements


def cooling_down(ledger: OfferLedger, product: str, ts: datetime, policy: OutcomePolicy) -> bool:
    """Whether the customer declined `product` within the decline cool-down before `ts`."""
    at = ledger.declined.get(product)
    cooldown = timedelta(days=policy.decline_cooldown_days)
    return at is not None and ts < datetime.fromisoformat(at) + cooldown


def settle_by_event(
    ledger: OfferLedger, *, opened: str | None, ts: datetime, policy: OutcomePolicy, by: str
) -> OfferLedger:
    """The ledger after one of the customer's own events: an opening accepts the offers of
    its product sent within the window, and offers past the window are ignored.

    Only the customer's own events settle their offers, so what an event settled is found
    again in its customer's ledger (`caused_by`) after any crash; an offer to a customer
    with no later event stays pending.
    """
    if not ledger.pending and not ledger.settled:
        return ledger  # most customers: nothing to accept, ignore or forget
    if opened is not None:
        ledger, _ = attribute_opening(ledger, opened, ts, policy, by=by)
    ledger, _ = expire_offers(ledger, ts, policy, by=by)
    return ledger
