"""The contact policy and the alert bookkeeping in a customer's state."""

from __future__ import annotations

from datetime import datetime, timedelta

from rules_store.domain.contact import ContactPolicy, pick_offer
from rules_store.domain.holdings import CustomerState, record_alert
from rules_store.domain.rules import Offer

ITEMS = ("存款", "保险", "基金和积利宝", "积存金")
NOW = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
POLICY = ContactPolicy(cooldown_days=30, max_per_day=2)
OFFERS = [Offer(1, 0.9, None, True), Offer(2, 0.6, None, True), Offer(3, 0.3, None, True)]


def _pick(state: CustomerState, ts: datetime = NOW) -> Offer | None:
    return pick_offer(
        OFFERS,
        ITEMS,
        last_offered=state.last_offered,
        alert_day=state.alert_day,
        alerts_on_day=state.alerts_on_day,
        ts=ts,
        policy=POLICY,
    )


def _sent(state: CustomerState, product: str, ts: datetime) -> CustomerState:
    return record_alert(state, product=product, ts=ts)


def test_a_product_is_not_offered_again_within_the_cooldown() -> None:
    state = _sent(CustomerState("c"), "保险", NOW - timedelta(days=29, hours=23))
    offer = _pick(state)
    assert offer is not None
    assert ITEMS[offer.item] == "基金和积利宝"  # the next best
    state = _sent(CustomerState("c"), "保险", NOW - timedelta(days=30))
    offer = _pick(state)
    assert offer is not None
    assert ITEMS[offer.item] == "保险"  # cool-down over


def test_at_most_n_alerts_per_customer_per_event_day() -> None:
    state = CustomerState("c")
    for i, product in enumerate(("保险", "基金和积利宝")):
        state = _sent(state, product, NOW + timedelta(minutes=i))
    assert state.alerts_on_day == 2
    assert _pick(state) is None
    tomorrow = datetime.fromisoformat("2026-11-24T00:30:00+08:00")
    assert _pick(state, tomorrow) is not None  # a new day by the event's own clock


def _two_segment_bundle():  # type: ignore[no-untyped-def]
    import numpy as np

    from rules_store.bundle.model import Bundle, SegmentRules
    from rules_store.bundle.schema import RETAIL_SCHEMA
    from rules_store.domain.segments import SegmentModel
    from tests.catalogs import catalog_schema

    n = len(RETAIL_SCHEMA.segment_fields)
    model = SegmentModel(
        tuple(f.name for f in RETAIL_SCHEMA.segment_fields),
        np.zeros(n),
        np.ones(n),
        np.array([np.zeros(n), np.full(n, 10.0)]),
    )
    segments = (
        SegmentRules(0, 10, (), ((1, 0.9), (2, 0.5))),
        SegmentRules(1, 10, (), ((3, 0.8), (1, 0.4))),
    )
    return Bundle(catalog_schema(ITEMS), "stop", model, segments)


def test_a_profile_that_moves_the_customer_to_another_segment_brings_an_offer() -> None:
    from rules_store.domain.alerts import choose_cross_sell
    from rules_store.domain.offers import OfferIndex

    bundle = _two_segment_bundle()
    index = OfferIndex(bundle)
    n = len(bundle.segment_model.features)
    held = {"存款": 10.0}
    before = CustomerState("c", balances=held, features=(0.0,) * n)
    same = CustomerState("c", balances=held, features=(0.5,) * n)
    moved = CustomerState("c", balances=held, features=(9.0,) * n)

    def choose(before: CustomerState, after: CustomerState):  # type: ignore[no-untyped-def]
        segment = bundle.segment_model.assign_segment(after.features)
        return choose_cross_sell(
            before, after, bundle, index, segment=segment, ts=NOW, policy=POLICY
        )

    assert choose(before, same) is None  # nothing changed
    chosen = choose(before, moved)
    assert chosen is not None
    assert (bundle.segment_model.assign_segment(moved.features), ITEMS[chosen[1].item]) == (
        1,
        "积存金",
    )
    assert choose(CustomerState("c", balances=held), moved) is None  # a first profile: baseline
