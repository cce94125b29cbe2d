"""Offers arranged by outcomes: declined products cool down, acceptance reorders the rest."""

from __future__ import annotations

from datetime import datetime

from rules_store.domain.acceptance import AdaptivePolicy, ArmKey, Tally
from rules_store.domain.adaptive import adaptive_for, arrange_offers
from rules_store.domain.outcomes import OfferLedger, OutcomePolicy
from rules_store.domain.rules import Offer

ITEMS = ("存款", "国债", "理财", "保险")
TS = datetime.fromisoformat("2026-11-20T10:00:00+08:00")
OFFERS = [Offer(1, 0.6, None, True), Offer(2, 0.5, None, True), Offer(3, 0.4, None, True)]


def arranged(
    ledger: OfferLedger, book: dict[ArmKey, Tally], policy: AdaptivePolicy, trigger: str = "c/e"
) -> list[str]:
    out = arrange_offers(
        OFFERS,
        ITEMS,
        ledger=ledger,
        ts=TS,
        outcomes=OutcomePolicy(),
        adaptive=policy,
        book=book,
        version="v1",
        segment=0,
        trigger=trigger,
    )
    return [ITEMS[a.offer.item] for a in out]


def test_a_declined_product_is_left_out_for_the_cool_down() -> None:
    ledger = OfferLedger(declined={"国债": "2026-10-01T09:00:00+08:00"})
    assert arranged(ledger, {}, AdaptivePolicy(enabled=False)) == ["理财", "保险"]
    old = OfferLedger(declined={"国债": "2026-08-01T09:00:00+08:00"})  # 111 days before
    assert arranged(old, {}, AdaptivePolicy(enabled=False)) == ["国债", "理财", "保险"]


def test_learned_acceptance_reorders_and_without_outcomes_the_ranker_s_order_stands() -> None:
    mean_only = AdaptivePolicy(thompson=False)
    assert arranged(OfferLedger(), {}, mean_only) == ["国债", "理财", "保险"]
    book = {
        ArmKey("v1", 0, "国债"): Tally(declined=300),
        ArmKey("v1", 0, "保险"): Tally(accepted=300),
    }
    assert arranged(OfferLedger(), book, mean_only) == ["保险", "理财", "国债"]


def test_thompson_draws_try_other_products_but_a_replay_decides_the_same() -> None:
    firsts = {
        arranged(OfferLedger(), {}, AdaptivePolicy(), trigger=f"c/e{i}")[0] for i in range(200)
    }
    assert firsts == {"国债", "理财", "保险"}  # uncertain products get tried
    assert all(
        arranged(OfferLedger(), {}, AdaptivePolicy(), trigger=f"c/e{i}")
        == arranged(OfferLedger(), {}, AdaptivePolicy(), trigger=f"c/e{i}")
        for i in range(50)
    )


def test_with_no_outcome_and_no_sampling_the_ranker_s_order_stands_even_against_its_figures() -> (
    None
):
    """The rules ranker puts a rule (confidence 0.4) before a fallback (holding rate 0.7)."""
    rule_first = [Offer(2, 0.4, None, False), Offer(1, 0.7, None, True), Offer(3, 0.2, None, True)]
    out = arrange_offers(
        rule_first,
        ITEMS,
        ledger=OfferLedger(),
        ts=TS,
        outcomes=OutcomePolicy(),
        adaptive=AdaptivePolicy(thompson=False),
        book={},
        version="v1",
        segment=0,
        trigger="c/e",
    )
    assert [a.offer for a in out] == rule_first


def test_the_prior_comes_from_the_bundle_s_offline_figures_or_the_setting() -> None:
    policy = AdaptivePolicy(prior_mean=0.1)
    forward = {"forward": {"HR@1": 0.23}, "hold-out": {"HR@1": 0.5}}
    assert adaptive_for(policy, forward).prior_mean == 0.23
    assert adaptive_for(policy, {"hold-out": {"HR@1": 0.5}}).prior_mean == 0.5
    assert adaptive_for(policy, {"hold-out": {"HR@1": 0.0}}).prior_mean == 0.01  # kept learnable
    assert adaptive_for(policy, {}) is policy
