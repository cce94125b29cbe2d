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

from rules_store.domain.acceptance import AdaptiveScore
from rules_store.domain.adaptive import Arranged, arrange_offers
from rules_store.domain.alerts import (
    RETENTION,
    ActiveView,
    AlertContext,
    Learning,
    Outgoing,
    alert_json,
    churned,
    context_of,
    cross_sell_alert,
    cross_sell_id,
    offer_considered,
    retention_alert,
)
from rules_store.domain.churn import DEFAULT_CHURN, ChurnFigures, ChurnPolicy, new_alert
from rules_store.domain.contact import ContactPolicy, pick_offer
from rules_store.domain.frozen import evolve
from rules_store.domain.holdings import CustomerState, record_alert
from rules_store.domain.offers import Asked
from rules_store.domain.outcomes import SentOffer, record_offer, settle_by_event
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
    learning: Learning | None = None  # outcomes' lessons; the event's position

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
    learning: Learning | None = None,
    arm: str = "champion",
) -> tuple[CustomerState | None, list[Outgoing], CrossSellDue | None]:
    """What to store, the churn alerts, and the cross-sell offer due, once an event has
    been applied (`after` None: it was applied before; nothing to store or send).

    `arm` names which bundle (`active`) serves this customer; with `learning` the offer due
    is decided with what outcomes taught (its effect on the offers ledger is a
    `LedgerStep`, made in event order with the batch's decisions)."""
    if after is None:
        return None, [], None
    out = []
    if (figures := new_alert(before.assets, after.assets)) is not None:
        out.append(
            churned(
                after,
                figures,
                event_id=event_id,
                ts=ts,
                active=active,
                threshold=churn.threshold,
                arm=arm,
            )
        )
    if active is None or after.features is None or not _moved(before, after, active):
        return after, out, None  # most events move neither: no context, no segment
    context = context_of(after, event_id=event_id, ts=ts, active=active, arm=arm)
    if context.segment is None:
        return after, out, None
    if not offer_considered(before, after, active.bundle, segment=context.segment):
        return after, out, None
    held = after.held_in(active.bundle.catalog)
    return (
        after,
        out,
        CrossSellDue(
            context, context.segment, held, after.features, ts, after.churn_risk, learning
        ),
    )


def _moved(before: CustomerState, after: CustomerState, active: ActiveView) -> bool:
    """Holdings or profile changed: only then can `offer_considered` hold (cheap to ask)."""
    catalog = active.bundle.catalog
    return after.features != before.features or after.held_in(catalog) != before.held_in(catalog)


@dataclass(frozen=True)
class LedgerStep:
    """An applied event's part in the customer's offers ledger: an opening accepts the
    offers of its product, offers past the window are ignored (`settle_by_event`)."""

    customer: str
    opened: str | None  # the product a transaction opened
    ts: datetime
    learning: Learning


class LedgerSteps:
    """A batch's ledger steps, made in event order with its offers: an offer decided at the
    end of the batch is recorded after its own event's step and before later ones, so a
    later opening in the same batch accepts it, as when every event is decided alone."""

    def __init__(self) -> None:
        self._pending: dict[str, list[LedgerStep]] = {}

    def add(self, step: LedgerStep) -> None:
        self._pending.setdefault(step.customer, []).append(step)

    def catch_up(self, state: CustomerState, until: str | None = None) -> CustomerState:
        """`state` with the customer's steps made, up to the event `until` (its `by`)."""
        steps = self._pending.get(state.customer_id)
        while steps:
            step = steps.pop(0)
            learning = step.learning
            offers = settle_by_event(
                state.offers,
                opened=step.opened,
                ts=step.ts,
                policy=learning.outcomes,
                by=learning.by,
            )
            if offers is not state.offers:  # most customers have no offer to settle
                state = evolve(state, offers=offers)
            if learning.by == until:
                break
        return state

    def customers(self) -> list[str]:
        return [c for c, steps in self._pending.items() if steps]


@dataclass(frozen=True)
class _Pick:
    due: CrossSellDue
    row: int  # among the batch's dues
    rank: int
    offer: Offer
    adaptive: AdaptiveScore | None


def _arranged(
    due: CrossSellDue, offers: tuple[Offer, ...], state: CustomerState, active: ActiveView
) -> list[Arranged]:
    """The ranker's offers as outcomes order them (declines left out), or as they are."""
    learning = due.learning
    if learning is None:
        return [Arranged(o, None) for o in offers]
    version = active.version
    return arrange_offers(
        offers,
        active.bundle.items,
        ledger=state.offers,
        ts=due.ts,
        outcomes=learning.outcomes,
        adaptive=learning.adaptive,
        book=learning.book(version, due.ts.date().isoformat()) if learning.adaptive.enabled else {},
        version=version,
        segment=due.segment,
        trigger=f"{due.context.customer_id}\x1f{due.context.event_id}",
    )


def decide_cross_sells(
    dues: Sequence[CrossSellDue],
    state_of: Callable[[str], CustomerState],
    *,
    active: ActiveView,
    policy: ContactPolicy,
    steps: LedgerSteps | None = None,
) -> tuple[list[Outgoing | None], dict[str, CustomerState]]:
    """Each due's alert (None when the contact policy allows none), in order, and the
    customers' states with their bookkeeping updated. `state_of` gives a customer's
    latest state; the dues were raised with `active`; `steps` are the batch's ledger steps,
    made up to each due's own event before it is decided."""
    index, items = active.offers, active.bundle.items
    scored = index.offers_many([due.asked for due in dues])
    latest: dict[str, CustomerState] = {}
    decided: list[_Pick | Outgoing | None] = []
    for row, (due, offers) in enumerate(zip(dues, scored.offers, strict=True)):
        customer = due.context.customer_id
        state = latest.get(customer) or state_of(customer)
        if steps is not None and due.learning is not None:
            state = latest[customer] = steps.catch_up(state, due.learning.by)
        arranged = _arranged(due, offers, state, active)
        ordered = [a.offer for a in arranged]
        offer = pick_offer(
            ordered,
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
            state = record_alert(state, product=product, ts=due.ts)
            if due.learning is not None:
                sent = SentOffer(
                    product,
                    due.ts.isoformat(),
                    active.version,
                    due.segment,
                    due.context.arm,
                    due.learning.by,
                )
                alert_id = cross_sell_id(due.context, product)
                state = evolve(state, offers=record_offer(state.offers, alert_id, sent))
            latest[customer] = state
            rank = ordered.index(offer)
            decided.append(_Pick(due, row, rank + 1, offer, arranged[rank].adaptive))
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
    explained = iter(index.explain(scored, [p.row for p in picks], [p.offer for p in picks]))
    out: list[Outgoing | None] = []
    for d in decided:
        if isinstance(d, _Pick):
            alert = cross_sell_alert(
                d.due.context, offer=next(explained), rank=d.rank, items=items, adaptive=d.adaptive
            )
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
    learning: Learning | None = None,
    arm: str = "champion",
    opened: str | None = None,
) -> tuple[CustomerState | None, list[Outgoing]]:
    """What to store and which alerts to send once one event has been applied: the batch
    path's steps for a batch of one. The crash tests' no-crash reference uses this."""
    stored, out, due = event_alerts(
        before,
        after,
        event_id=event_id,
        ts=ts,
        active=active,
        churn=churn,
        learning=learning,
        arm=arm,
    )
    steps = LedgerSteps()
    if stored is not None and learning is not None:
        steps.add(LedgerStep(stored.customer_id, opened, ts, learning))
    if stored is None:
        return None, out
    if due is None or active is None:
        return steps.catch_up(stored), out
    alerts, latest = decide_cross_sells(
        [due], lambda _: stored, active=active, policy=policy, steps=steps
    )
    final = steps.catch_up(latest.get(stored.customer_id, stored))
    return final, out + [a for a in alerts if a is not None]
