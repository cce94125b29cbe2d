"""Properties of the shared recommendation logic (rules_store/domain/rules.py, bundle.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rules_store.domain.rules import Rule, match_rules, recommend
from tests.default_catalog import (
    BALANCE_COLUMNS,
    PRODUCT_BALANCES,
    PRODUCTS,
    holdings_from_balances,
    mask_to_products,
    products_to_mask,
)

N = len(PRODUCTS)
FULL = (1 << N) - 1
unit = st.floats(0.01, 1.0)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    antecedents = draw(st.integers(1, FULL - 1))
    consequents = draw(st.integers(1, FULL).filter(lambda c: c & antecedents == 0))
    return Rule(
        antecedents,
        consequents,
        draw(unit),
        draw(unit),
        draw(unit),
        draw(unit),
        draw(st.floats(0.5, 5)),
        0.0,
        1.0,
    )


popularity = st.permutations(range(N)).map(
    lambda order: tuple((i, 1.0 - k / N) for k, i in enumerate(order))
)


@given(st.integers(0, FULL), st.lists(rules(), max_size=30), popularity, st.integers(0, 5))
def test_offers_never_include_a_held_product_and_respect_top_k(
    held: int, rule_list: list[Rule], ranking: tuple[tuple[int, float], ...], top_k: int
) -> None:
    offers = recommend(held, rule_list, ranking, top_k=top_k)
    assert len(offers) <= top_k
    assert all(not held >> o.item & 1 for o in offers)
    assert len({o.item for o in offers}) == len(offers)


@given(st.integers(0, FULL), st.lists(rules(), max_size=30), popularity)
def test_each_offer_is_explained_by_the_strongest_matching_rule(
    held: int, rule_list: list[Rule], ranking: tuple[tuple[int, float], ...]
) -> None:
    offers = recommend(held, rule_list, ranking, top_k=N)
    matching = [
        r for r in rule_list if r.antecedents & held == r.antecedents and not r.consequents & held
    ]
    if not matching:
        assert all(o.fallback and o.rule is None for o in offers)
        return
    assert not any(o.fallback for o in offers)
    for offer in offers:
        assert offer.rule is not None
        assert offer.rule in matching
        assert offer.rule.consequents >> offer.item & 1
        assert offer.score == offer.rule.confidence
        contenders = [r for r in matching if r.consequents >> offer.item & 1]
        assert offer.rule.strength() == max(r.strength() for r in contenders)
    scores = [(o.rule.strength() if o.rule else ()) for o in offers]
    assert scores == sorted(scores, reverse=True)


def test_ties_on_confidence_go_to_lift_then_support() -> None:
    weaker = Rule(0b1, 0b10, 0.5, 0.5, 0.2, 0.8, 1.2, 0.0, 1.0)
    higher_lift = Rule(0b1, 0b110, 0.5, 0.5, 0.1, 0.8, 1.5, 0.0, 1.0)
    higher_support = Rule(0b1, 0b10, 0.5, 0.5, 0.3, 0.8, 1.2, 0.0, 1.0)
    best = match_rules(0b1, [weaker, higher_lift, higher_support])
    assert best[1] is higher_lift
    assert match_rules(0b1, [weaker, higher_support])[1] is higher_support


def test_fallback_offers_the_segments_most_held_products_not_held() -> None:
    ranking = ((0, 0.99), (7, 0.6), (2, 0.3), (5, 0.0))
    offers = recommend(0b1, [], ranking, top_k=3)
    assert [(o.item, o.fallback) for o in offers] == [(7, True), (2, True)]  # never a 0% product
    assert offers[0].score == 0.6


@given(
    st.dictionaries(
        st.sampled_from(BALANCE_COLUMNS), st.floats(-1e6, 1e6, allow_nan=False), min_size=1
    )
)
def test_holdings_from_one_customer_equal_the_column_wise_result(
    balances: dict[str, float],
) -> None:
    one = holdings_from_balances(balances)
    columns = {k: np.array([v, 0.0]) for k, v in balances.items()}
    many = holdings_from_balances(columns)
    assert one == int(many[0])
    assert int(many[1]) == 0
    for product, needed in PRODUCT_BALANCES.items():
        assert (product in mask_to_products(one)) == any(balances.get(c, 0.0) != 0 for c in needed)


def test_merged_products_are_held_when_either_balance_is_non_zero() -> None:
    assert mask_to_products(holdings_from_balances({"积利宝余额": 1.0})) == ("基金和积利宝",)
    assert mask_to_products(holdings_from_balances({"信用卡分期余额": 2.0})) == ("贷款和信用卡",)
    assert mask_to_products(holdings_from_balances({"高净值产品余额": 3.0})) == ("代销资管产品",)
    assert products_to_mask(PRODUCTS) == FULL
