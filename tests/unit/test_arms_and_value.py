"""Champion/challenger split and rates; the customer value percentile."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.domain.arms import acceptance_rate, assign_arm, uplift
from rules_store.domain.customer_value import ValueModel, quantile_cuts
from training.customer_value import fit_value_model


def test_the_challenger_gets_its_share_and_a_customer_keeps_their_arm() -> None:
    ids = [f"C{i:06d}" for i in range(20_000)]
    arms = [assign_arm(c, 0.2) for c in ids]
    assert abs(arms.count("challenger") / len(ids) - 0.2) < 0.01
    assert arms == [assign_arm(c, 0.2) for c in ids]
    # A larger share only moves champions over: nobody leaves the challenger.
    assert all(
        assign_arm(c, 0.3) == "challenger"
        for c, a in zip(ids, arms, strict=False)
        if a == "challenger"
    )


def test_the_interval_covers_the_rate_and_uplift_compares_arms() -> None:
    small, large = acceptance_rate(3, 10), acceptance_rate(300, 1000)
    assert small.low < large.low < 0.3 < large.high < small.high
    assert uplift(acceptance_rate(36, 100), acceptance_rate(30, 100)) == 0.19999999999999996
    assert uplift(acceptance_rate(3, 10), acceptance_rate(0, 0)) is None


def _columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "financial_assets": rng.lognormal(10, 2, n),
        "products_held": rng.integers(0, 8, n).astype(float),
        "tenure": rng.integers(0, 30, n).astype(float),
        "activity": rng.poisson(3, n).astype(float),
    }


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32 - 1))
def test_the_stream_s_value_equals_training_s(n: int, seed: int) -> None:
    columns = _columns(n, seed)
    model, values = fit_value_model(
        columns, tenure_field="开户年限", activity_field="签约消费渠道个数"
    )
    for i in range(min(n, 50)):
        assert model.value({k: float(v[i]) for k, v in columns.items()}) == values[i]


def test_more_of_every_component_is_worth_more_and_the_top_is_100() -> None:
    columns = _columns(5000, 1)
    model, values = fit_value_model(columns, tenure_field="t", activity_field="a")
    assert values.max() == 100.0
    assert 0 < values.min() < 5
    low = {"financial_assets": 100.0, "products_held": 1.0, "tenure": 1.0, "activity": 0.0}
    high = {"financial_assets": 1e6, "products_held": 5.0, "tenure": 20.0, "activity": 9.0}
    assert model.value(low) < model.value(high)
    # Weights: assets count most. Richer alone beats longer tenure alone.
    rich = low | {"financial_assets": 1e6}
    loyal = low | {"tenure": 29.0}
    assert model.value(rich) > model.value(loyal)


def test_a_missing_component_drops_out_and_the_rest_are_rescaled() -> None:
    columns = _columns(100, 2)
    del columns["tenure"]
    model, _ = fit_value_model(columns, tenure_field=None, activity_field="a")
    assert set(model.weights) == {"financial_assets", "products_held", "activity"}
    assert abs(sum(model.weights.values()) - 1) < 1e-12
    assert isinstance(model, ValueModel)
    assert quantile_cuts([]) == ()
