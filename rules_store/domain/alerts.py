"""Alerts as branch apps receive them: plain JSON with a deterministic `alert_id`.

The same triggering event, bundle and offer always give the same id, so a consumer that
sees an alert twice (a worker restarted and re-processed the event) can drop the repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from rules_store.bundle.model import Bundle
from rules_store.domain.acceptance import AdaptivePolicy, AdaptiveScore, ArmKey, Tally
from rules_store.domain.catalog import PRODUCTS_HELD_FIELD
from rules_store.domain.churn import ChurnFigures, ChurnPolicy, close_days
from rules_store.domain.contact import ContactPolicy, pick_offer
from rules_store.domain.customer_value import customer_inputs
from rules_store.domain.frozen import evolve
from rules_store.domain.holdings import CustomerState
from rules_store.domain.offers import OfferIndex
from rules_store.domain.outcomes import OutcomePolicy, offer_alert_id
from rules_store.domain.ranking import evidence_json
from rules_store.domain.rules import Offer, format_itemset
from rules_store.domain.scoring import FeatureError, unseen_inputs
from rules_store.domain.state_codec import figures_to_dict


class ActiveView(NamedTuple):
    """The bundle in use: its version, the bundle and its precomputed offer index."""

    version: str
    bundle: Bundle
    offers: OfferIndex  # the bundle's offers, precomputed


def alert_id(*parts: str) -> str:
    """A stable id from what triggered the alert.

    >>> alert_id("cross_sell", "c1", "e9", "v1", "国债") == alert_id("cross_sell", "c1", "e9", "v1", "国债")
    True
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AlertContext:
    """What every alert says about its customer and trigger."""

    customer_id: str
    branch_id: str | None
    ts: str
    event_id: str
    bundle_version: str | None
    segment: int | None
    arm: str = "champion"  # champion or challenger: which bundle served the customer
    value: float | None = None  # the customer's value percentile, when the bundle has the model

    def fields(self, alert_id: str, kind: str) -> dict[str, Any]:
        return {"alert_id": alert_id, "type": kind, **asdict(self)}


def cross_sell_id(context: AlertContext, product: str) -> str:
    """A cross-sell alert's id: its customer, then a digest of its trigger and offer."""
    digest = alert_id(
        "cross_sell", context.customer_id, context.event_id, str(context.bundle_version), product
    )
    return offer_alert_id(context.customer_id, digest)


def cross_sell_alert(
    context: AlertContext,
    *,
    offer: Offer,
    rank: int,
    items: tuple[str, ...],
    adaptive: AdaptiveScore | None = None,
) -> dict[str, Any]:
    product = items[offer.item]
    evidence: dict[str, Any] = {"fallback": offer.fallback, "score": offer.score}
    if offer.evidence is not None:
        evidence |= evidence_json(offer.evidence, items)
    if adaptive is not None:
        # The learned acceptance that ordered this offer: score × factor is what ranked it.
        evidence["acceptance"] = {
            "factor": round(adaptive.factor, 6),
            "posterior_mean": round(adaptive.belief.mean, 6),
            "alpha": round(adaptive.belief.alpha, 6),
            "beta": round(adaptive.belief.beta, 6),
        }
    if offer.rule is not None:
        evidence |= {
            "antecedents": format_itemset(offer.rule.antecedents, items).split("|"),
            "consequents": format_itemset(offer.rule.consequents, items).split("|"),
            "support": offer.rule.support,
            "confidence": offer.rule.confidence,
            "lift": offer.rule.lift,
        }
    key = cross_sell_id(context, product)
    return context.fields(key, "cross_sell") | {
        "rank": rank,
        "product": product,
        "evidence": evidence,
    }


def churn_alert(
    context: AlertContext,
    *,
    figures: ChurnFigures,
    threshold: float,
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One alert per customer per month: its id is the customer and the month only.
    `model` is the churn model's opinion (`churn_model_opinion`), when the bundle has one."""
    month = figures.day[:7]
    explanation = (
        f"average daily financial assets {figures.month_avg:,.2f} over {figures.days_counted}"
        f" days of {month} fell {figures.drop:.1%} against {figures.baseline_avg:,.2f},"
        f" the average of {', '.join(sorted(figures.baseline_months))}"
    )
    alert = context.fields(alert_id("churn", context.customer_id, month), "churn") | {
        "month": month,
        "threshold": threshold,
        "figures": figures_to_dict(figures),
    }
    if model is not None:
        alert["model"] = model
        if model["probability"] is not None:
            explanation += (
                f"; the churn model gives {model['probability']:.1%}"
                f" (threshold {model['threshold']:.1%})"
            )
    return alert | {"explanation": explanation}


def churn_model_opinion(
    bundle: Bundle, corporate: Mapping[str, float | str], *, held: int, as_of: str | None
) -> dict[str, Any] | None:
    """The bundle's churn model on a customer, or None when it has none.

    The products held (`held`, a catalog bitmask) are known now; every other input comes
    from `corporate` (in the stream: the last snapshot row that carried the corporate
    fields, as of `as_of`), and the answer says which came from where. Missing inputs
    give no probability, with the reason.
    """
    model = bundle.churn_model
    if model is None:
        return None
    inputs = {**corporate, PRODUCTS_HELD_FIELD: float(held.bit_count())}
    names = model.feature_names
    opinion: dict[str, Any] = {
        "kind": model.kind,
        "threshold": model.threshold,
        "from_holdings": [n for n in names if n == PRODUCTS_HELD_FIELD],
        "from_corporate": [n for n in names if n != PRODUCTS_HELD_FIELD],
        "corporate_as_of": as_of,
        # Category values the model did not see in training: encoded as all zeros.
        "unseen_values": list(unseen_inputs(model.inputs, inputs)),
    }
    try:
        probability = model.probability(inputs)
    except FeatureError as exc:
        return opinion | {"probability": None, "predicted": None, "reason": str(exc)}
    return opinion | {
        "probability": round(probability, 4),
        "predicted": probability >= model.threshold,
    }


def retention_alert(
    context: AlertContext, *, instead_of: str, figures: ChurnFigures
) -> dict[str, Any]:
    """Sent instead of a cross-sell offer while the customer is flagged at churn risk."""
    key = alert_id("retention", context.customer_id, context.event_id, str(context.bundle_version))
    return context.fields(key, "retention") | {
        "instead_of": instead_of,
        "churn": figures_to_dict(figures),
    }


@dataclass(frozen=True)
class Learning:
    """What outcomes have taught, for one event: the policies, the counts offers of a
    version and event-time day are ranked with, and the event's position (what it sends
    is recorded in the customer's offers ledger under it)."""

    outcomes: OutcomePolicy
    adaptive: AdaptivePolicy
    book: Callable[[str, str], Mapping[ArmKey, Tally]]  # (version, day) -> counts
    by: str  # "topic:partition@offset"


def offer_considered(
    before: CustomerState, after: CustomerState, bundle: Bundle, *, segment: int
) -> bool:
    """Whether a changed state calls for a cross-sell offer: the held products changed, or
    a later profile moved the customer to another segment (a first one only sets it)."""
    moved = (
        before.features is not None
        and before.features != after.features
        and bundle.segment_model.assign_segment(before.features) != segment
    )
    catalog = bundle.catalog
    return moved or after.held_in(catalog) != before.held_in(catalog)


def choose_cross_sell(
    before: CustomerState,
    after: CustomerState,
    bundle: Bundle,
    index: OfferIndex,
    *,
    segment: int,
    ts: datetime,
    policy: ContactPolicy,
) -> tuple[int, Offer] | None:
    """(rank, offer) to alert on after a customer's state changed, or None.

    An alert is considered when the held products or the segment changed. None when
    neither did, or when the contact policy allows no offer now. The churn-risk flag is
    left to the caller, which sends a retention alert instead.
    """
    held = after.held_in(bundle.catalog)
    if not offer_considered(before, after, bundle, segment=segment):
        return None
    offers = index.offers(segment, held, after.features)
    offer = pick_offer(
        offers,
        bundle.items,
        last_offered=after.last_offered,
        alert_day=after.alert_day,
        alerts_on_day=after.alerts_on_day,
        ts=ts,
        policy=policy,
    )
    return None if offer is None else (offers.index(offer) + 1, offer)


Outgoing = tuple[str, str]  # (alert type, JSON): the worker routes churn alerts to their topic


def alert_json(alert: dict[str, Any]) -> str:
    return json.dumps(alert, ensure_ascii=False, allow_nan=False)  # strict JSON for every reader


def segment_of(state: CustomerState, active: ActiveView | None) -> int | None:
    if active is None or state.features is None:
        return None
    return active.bundle.segment_model.assign_segment(state.features)


def customer_value(state: CustomerState, bundle: Bundle) -> float | None:
    """The customer's value percentile under the bundle's model, None without one."""
    model = bundle.value_model
    if model is None:
        return None
    catalog = bundle.catalog
    profile = (
        dict(zip(bundle.segment_model.features, state.features, strict=True))
        if state.features is not None
        else None
    )
    return model.value(
        customer_inputs(
            model,
            financial_assets=state.financial_assets_in(catalog),
            held=state.held_in(catalog),
            profile=profile,
        )
    )


def context_of(
    state: CustomerState,
    *,
    event_id: str,
    ts: datetime,
    active: ActiveView | None,
    arm: str = "champion",
) -> AlertContext:
    return AlertContext(
        customer_id=state.customer_id,
        branch_id=state.branch_id,
        ts=ts.isoformat(),
        event_id=event_id,
        bundle_version=active.version if active else None,
        segment=segment_of(state, active),
        arm=arm,
        value=customer_value(state, active.bundle) if active else None,
    )


def churned(
    state: CustomerState,
    figures: ChurnFigures,
    *,
    event_id: str,
    ts: datetime,
    active: ActiveView | None,
    threshold: float,
    arm: str = "champion",
) -> Outgoing:
    context = context_of(state, event_id=event_id, ts=ts, active=active, arm=arm)
    model = (
        churn_model_opinion(
            active.bundle,
            state.corporate,
            held=state.held_in(active.bundle.catalog),
            as_of=state.corporate_as_of,
        )
        if active
        else None
    )
    return "churn", alert_json(
        churn_alert(context, figures=figures, threshold=threshold, model=model)
    )


RETENTION = "retention"  # the cool-down key of retention alerts: one per churn episode


def after_day_close(
    state: CustomerState,
    until: datetime,
    *,
    active: ActiveView | None,
    churn: ChurnPolicy,
) -> tuple[CustomerState | None, list[Outgoing]]:
    """Judge the customer's days before the day of `until` (the stream's event time
    reached it): the new state if anything changed, and the churn alerts due.

    An alert's trigger is the close of the day it was raised on, not whichever event
    happened to close it, so a worker that closes days again after a crash sends the
    same alert, byte for byte.
    """
    assets, raised = close_days(state.assets, until.date().isoformat(), churn)
    if assets == state.assets:
        return None, []
    after = evolve(state, assets=assets)
    out = []
    for figures in raised:
        closed = datetime.combine(
            date.fromisoformat(figures.day) + timedelta(days=1), time(), until.tzinfo
        )
        out.append(
            churned(
                after,
                figures,
                event_id=f"day-closed:{figures.day}",
                ts=closed,
                active=active,
                threshold=churn.threshold,
            )
        )
    return after, out
