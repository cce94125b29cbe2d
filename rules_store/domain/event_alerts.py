"""What an applied event alerts: one event at a time, or a whole batch's offers at once.

An event's churn alert is known as soon as it is applied. Its cross-sell offer needs the
ranker's scores for the new holdings and profile, so `event_alerts` leaves it as a
`CrossSellDue`, and `decide_cross_sells` scores a batch's dues together (one numpy call
for a profile ranker, `OfferIndex.offers_many`) and explains the offers it sends
together. Deciding at the end of a batch gives the alerts that deciding at each event
gives: applying an event never reads or writes the contact bookkeeping (`last_offered`,
`alert_day`, `alerts_on_day`), which only `record_alert` writes, so a customer's dues are
decided in event order against the bookkeeping of its latest state. Scores are computed
row by row (rules_store/domain/scoring.py), so a replay that cuts the batches elsewhere
sends the same alerts, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rules_store.domain.alerts import (
    RETENTION,
    ActiveView,
    AlertContext,
    Outgoing,
    alert_json,
    churned,
    context_of,
    cross_sell_alert,
    offer_considered,
    retention_alert,
)
from rules_store.domain.churn import DEFAULT_CHURN, ChurnFigures, ChurnPolicy, new_alert
from rules_store.domain.contact import ContactPolicy, pick_offer
from rules_store.domain.holdings import CustomerState, record_alert
from rules_store.domain.offers import Asked
from rules_store.domain.rules import Offer


@dataclass(frozen=True)
class CrossSellDue:
    """An event whose cross-sell offer is still to be chosen, with what it was applied to."""

    context: AlertContext  # its customer and trigger
    segment: int
    held: int
    features: tuple[float, ...] | None
    ts: datetime
    risk: ChurnFigures | None  # at churn risk: a retention alert instead of the offer

    @property
    def asked(self) -> Asked:
        return self.segment, self.held, self.features


def event_alerts(
    before: CustomerState,
    after: CustomerState | None,
    *,
    event_id: str,
    ts: datetime,
    active: ActiveView | None,
    churn: ChurnPolicy = DEFAULT_CHURN,
) -> tuple[CustomerState | None, list[Outgoing], CrossSellDue | None]:
    """What to store, the churn alerts, and the cross-sell offer due, once an event has
    been applied (`after` None: it was applied before; nothing to store or send)."""
    if after is None:
        return None, [], None
    out = []
    if (figures := new_alert(before.assets, after.assets)) is not None:
        out.append(
            churned(
                after, figures, event_id=event_id, ts=ts, active=active, threshold=churn.threshold
            )
        )
    context = context_of(after, event_id=event_id, ts=ts, active=active)
    if active is None or context.segment is None:
        return after, out, None
    if not offer_considered(before, after, active.bundle, segment=context.segment):
        return after, out, None
    held = after.held_in(active.bundle.catalog)
    return (
        after,
        out,
        CrossSellDue(context, context.segment, held, after.features, ts, after.churn_risk),
    )


@dataclass(frozen=True)
class _Pick:
    due: CrossSellDue
    rank: int
    offer: Offer


def decide_cross_sells(
    dues: Sequence[CrossSellDue],
    state_of: Callable[[str], CustomerState],
    *,
    active: ActiveView,
    policy: ContactPolicy,
) -> tuple[list[Outgoing | None], dict[str, CustomerState]]:
    """Each due's alert (None when the contact policy allows none), in order, and the
    customers' states with their bookkeeping updated. `state_of` gives a customer's
    latest state; the dues were raised with `active`."""
    index, items = active.offers, active.bundle.items
    found = index.offers_many([due.asked for due in dues])
    latest: dict[str, CustomerState] = {}
    decided: list[_Pick | Outgoing | None] = []
    for due, offers in zip(dues, found, strict=True):
        customer = due.context.customer_id
        state = latest.get(customer) or state_of(customer)
        offer = pick_offer(
            offers,
            items,
            last_offered=state.last_offered,
            alert_day=state.alert_day,
            alerts_on_day=state.alerts_on_day,
            ts=due.ts,
            policy=policy,
        )
        if offer is None:
            decided.append(None)
            continue
        product = items[offer.item]
        if due.risk is None:
            latest[customer] = record_alert(state, product=product, ts=due.ts)
            decided.append(_Pick(due, offers.index(offer) + 1, offer))
            continue
        last = state.last_offered.get(RETENTION)
        if last is not None and due.ts - datetime.fromisoformat(last) < timedelta(
            days=policy.cooldown_days
        ):
            decided.append(None)
            continue
        latest[customer] = record_alert(state, product=RETENTION, ts=due.ts)
        alert = retention_alert(due.context, instead_of=product, figures=due.risk)
        decided.append(("retention", alert_json(alert)))
    picks = [d for d in decided if isinstance(d, _Pick)]
    explained = iter(index.explain([p.due.asked for p in picks], [p.offer for p in picks]))
    out: list[Outgoing | None] = []
    for d in decided:
        if isinstance(d, _Pick):
            alert = cross_sell_alert(d.due.context, offer=next(explained), rank=d.rank, items=items)
            out.append(("cross_sell", alert_json(alert)))
        else:
            out.append(d)
    return out, latest


def after_event(
    before: CustomerState,
    after: CustomerState | None,
    *,
    event_id: str,
    ts: datetime,
    active: ActiveView | None,
    policy: ContactPolicy,
    churn: ChurnPolicy = DEFAULT_CHURN,
) -> tuple[CustomerState | None, list[Outgoing]]:
    """What to store and which alerts to send once one event has been applied: the batch
    path's steps for a batch of one. The crash tests' no-crash reference uses this."""
    stored, out, due = event_alerts(
        before, after, event_id=event_id, ts=ts, active=active, churn=churn
    )
    if due is None or stored is None or active is None:
        return stored, out
    alerts, latest = decide_cross_sells([due], lambda _: stored, active=active, policy=policy)
    return latest.get(stored.customer_id, stored), out + [a for a in alerts if a is not None]
