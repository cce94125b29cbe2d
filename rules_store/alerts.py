"""Alerts as branch apps receive them: plain JSON with a deterministic `alert_id`.

The same triggering event, bundle and offer always give the same id, so a consumer that
sees an alert twice (a worker restarted and re-processed the event) can drop the repeat.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from rules_store.bundle import Bundle
from rules_store.contact import ContactPolicy, pick_offer
from rules_store.holdings import CustomerState, record_alert
from rules_store.offers import OfferIndex
from rules_store.rules import Offer, format_itemset

ActiveBundleView = tuple[str, Bundle, OfferIndex]  # (version, bundle, its offer index)


def alert_id(*parts: str) -> str:
    """A stable id from what triggered the alert.

    >>> alert_id("cross_sell", "c1", "e9", "v1", "国债") == alert_id("cross_sell", "c1", "e9", "v1", "国债")
    True
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def cross_sell_alert(
    *,
    customer_id: str,
    branch_id: str | None,
    ts: str,
    event_id: str,
    bundle_version: str,
    segment: int,
    offer: Offer,
    rank: int,
    items: tuple[str, ...],
) -> dict[str, Any]:
    product = items[offer.item]
    evidence: dict[str, Any] = {"fallback": offer.fallback, "score": offer.score}
    if offer.rule is not None:
        evidence |= {
            "antecedents": format_itemset(offer.rule.antecedents, items).split("|"),
            "consequents": format_itemset(offer.rule.consequents, items).split("|"),
            "support": offer.rule.support,
            "confidence": offer.rule.confidence,
            "lift": offer.rule.lift,
        }
    return {
        "alert_id": alert_id("cross_sell", customer_id, event_id, bundle_version, product),
        "type": "cross_sell",
        "customer_id": customer_id,
        "branch_id": branch_id,
        "ts": ts,
        "event_id": event_id,
        "bundle_version": bundle_version,
        "segment": segment,
        "rank": rank,
        "product": product,
        "evidence": evidence,
    }


def choose_cross_sell(
    before: CustomerState,
    after: CustomerState,
    bundle: Bundle,
    index: OfferIndex,
    *,
    ts: datetime,
    policy: ContactPolicy,
) -> tuple[int, int, Offer] | None:
    """(segment, rank, offer) to alert on after a customer's state changed, or None.

    An alert is considered when the held products or the segment changed. None when
    neither did, when the customer's profile (hence segment) is not known yet, or when
    the contact policy allows no offer now.
    """
    if after.features is None:
        return None
    segment = bundle.segment_model.assign_segment(after.features)
    # A first profile only sets the baseline; a later one that moves the customer counts.
    moved = (
        before.features is not None
        and bundle.segment_model.assign_segment(before.features) != segment
    )
    if after.held == before.held and not moved:
        return None
    offers = index.offers(segment, after.held)
    offer = pick_offer(
        offers,
        bundle.items,
        last_offered=after.last_offered,
        alert_day=after.alert_day,
        alerts_on_day=after.alerts_on_day,
        churn_risk=after.churn_risk,
        ts=ts,
        policy=policy,
    )
    return None if offer is None else (segment, offers.index(offer) + 1, offer)


def after_event(
    before: CustomerState,
    after: CustomerState | None,
    *,
    source: str,
    offset: int,
    event_id: str,
    ts: datetime,
    active: ActiveBundleView | None,
    policy: ContactPolicy,
) -> tuple[CustomerState | None, list[str]]:
    """What to store and which alerts (JSON) to send once an event has been applied.

    `after` is None when the event at (source, offset) was applied before (a restarted
    worker re-reads it): nothing is stored and the alerts it caused are sent again, with
    the same ids. The worker and the crash tests' no-crash reference both use this.
    """
    if after is None:
        return None, before.alerts_for(source, offset)
    if active is None:
        return after, []
    version, bundle, index = active
    chosen = choose_cross_sell(before, after, bundle, index, ts=ts, policy=policy)
    if chosen is None:
        return after, []
    segment, rank, offer = chosen
    alert = json.dumps(
        cross_sell_alert(
            customer_id=after.customer_id,
            branch_id=after.branch_id,
            ts=ts.isoformat(),
            event_id=event_id,
            bundle_version=version,
            segment=segment,
            offer=offer,
            rank=rank,
            items=bundle.items,
        ),
        ensure_ascii=False,
    )
    stored = record_alert(
        after, product=bundle.items[offer.item], ts=ts, source=source, offset=offset, alert=alert
    )
    return stored, [alert]
