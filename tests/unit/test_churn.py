"""The churn-drop test by event time: closed days, carry-forward, late events, the flag."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.alerts import ActiveView, after_day_close
from rules_store.domain.catalog import CORPORATE_FIELDS
from rules_store.domain.churn import (
    AssetHistory,
    ChurnPolicy,
    TooLateError,
    close_days,
    drop_on,
    with_snapshot,
)
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.event_alerts import after_event
from rules_store.domain.events import InvalidEventError, Transaction
from rules_store.domain.holdings import CustomerState, apply_snapshot, apply_transaction
from rules_store.domain.offers import OfferIndex
from rules_store.domain.scoring import LogisticModel, ScoringModel, encoded_columns
from rules_store.domain.state_codec import decode_state, encode_state
from tests.default_catalog import CATALOG
from tests.unit.test_contact_policy import _two_segment_bundle
from training.corporate_data import CHURN, feature_inputs, learn_inputs
from training.corporate_generate import INDUSTRIES

POLICY = ChurnPolicy(threshold=0.5, grace_days=3)
# Three months at 10,000 a day on average: the baseline.
MONTHS = {"2026-08": 9_000.0, "2026-09": 10_000.0, "2026-10": 11_000.0}


def _start(
    balance: float = 10_000.0, months: dict[str, float] = MONTHS, policy: ChurnPolicy = POLICY
) -> CustomerState:
    """A customer loaded from a snapshot as of Oct 31, with its months table."""
    assets = with_snapshot(
        AssetHistory(), balance, as_of="2026-10-31", months=months, policy=policy
    )
    return CustomerState("c", balances={"存款": balance}, assets=assets)


_offsets = iter(range(10**9))


def _tx(day: int, kind: str, amount: float, *, hour: int = 10, month: int = 11) -> Transaction:
    ts = datetime.fromisoformat(f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+08:00")
    return Transaction(f"e{day}-{hour}-{kind}", "c", ts, "存款", kind, amount)


def _apply(state: CustomerState, tx: Transaction) -> CustomerState:
    after = apply_transaction(
        state, tx, catalog=CATALOG, source="t:0", offset=next(_offsets), churn=POLICY
    )
    assert after is not None
    return after


def _close(state: CustomerState, until: str) -> tuple[CustomerState, list[dict]]:
    at = datetime.fromisoformat(f"{until}T08:00:00+08:00")
    stored, alerts = after_day_close(state, at, active=None, churn=POLICY)
    return stored or state, [json.loads(a) for _, a in alerts]


def test_a_drain_raises_one_alert_on_the_first_closed_day_past_the_threshold() -> None:
    state = _apply(_start(), _tx(1, "debit", 9_000))  # 1,000 left from Nov 1
    # Nov 1 alone: average 1,000 against 10,000: a 90% drop, but only once the day closes.
    state, alerts = _close(state, "2026-11-01")
    assert alerts == []
    state, alerts = _close(state, "2026-11-02")
    assert [a["type"] for a in alerts] == ["churn"]
    alert = alerts[0]
    assert alert["month"] == "2026-11"
    # Triggered by the close of Nov 1, whichever event closed it: the same bytes on a re-run.
    assert (alert["event_id"], alert["ts"]) == (
        "day-closed:2026-11-01",
        "2026-11-02T00:00:00+08:00",
    )
    assert alert["figures"] == {
        "day": "2026-11-01",
        "month_avg": 1_000.0,
        "baseline_avg": 10_000.0,
        "drop": 0.9,
        "days_counted": 1,
        "baseline_months": ["2026-10", "2026-09", "2026-08"],
    }
    assert state.churn_risk is not None
    # Days go on with no event: the balance carries forward, and no second alert this month.
    state, alerts = _close(state, "2026-11-20")
    assert alerts == []
    assert state.assets.judged == "2026-11-19"
    assert state.churn_risk is not None


def test_the_month_to_date_average_counts_every_day_carrying_balances_forward() -> None:
    state = _start()
    state = _apply(state, _tx(5, "debit", 8_000))  # 10,000 for Nov 1-4, then 2,000
    state, alerts = _close(state, "2026-11-08")  # through Nov 7: (4*10,000 + 3*2,000)/7
    assert alerts == []  # 6,571: a 34% drop
    state, alerts = _close(state, "2026-11-11")  # through Nov 10: 52,000/10, a 48% drop
    assert alerts == []
    state, alerts = _close(state, "2026-11-13")  # through Nov 11: 54,000/11, 50.9%
    assert alerts[0]["figures"]["day"] == "2026-11-11"
    assert alerts[0]["figures"]["month_avg"] == pytest.approx(54_000 / 11, abs=0.01)
    assert alerts[0]["figures"]["days_counted"] == 11


_NOV = [f"2026-11-{d:02d}" for d in range(1, 31)]


@given(
    st.dictionaries(st.sampled_from(_NOV), st.floats(0, 1e9), max_size=8),
    st.sampled_from(_NOV),
    st.one_of(st.none(), st.sampled_from(_NOV)),
)
def test_month_totals_add_up_every_known_day_carried_forward_exactly(
    days: dict[str, float], since: str, through: str | None
) -> None:
    history = AssetHistory(days={"2026-10-30": 7.5, **days}, since=since)
    total, count, value = 0.0, 0, 7.5
    for day in _NOV:  # the definition, day by day
        value = days.get(day, value)
        if day >= since and (through is None or day <= through):
            total += value
            count += 1
    assert history.month_totals("2026-11", through) == (total, count)  # to the last bit


def test_a_reversal_the_same_day_raises_no_alert() -> None:
    state = _apply(_start(), _tx(3, "debit", 9_500, hour=9))  # a mistaken withdrawal...
    state = _apply(state, _tx(3, "credit", 9_500, hour=11))  # ...reversed the same day
    state, alerts = _close(state, "2026-11-30")
    assert alerts == []
    assert state.churn_risk is None


def test_a_late_event_within_the_grace_period_corrects_the_days_it_touches() -> None:
    state = _apply(_start(), _tx(10, "credit", 0.0))  # the customer's clock: Nov 10
    late = _apply(state, _tx(8, "debit", 6_000))  # dated Nov 8, arrives on Nov 10
    assert late.balances["存款"] == 4_000
    assert late.assets.total_on("2026-11-07") == 10_000
    assert late.assets.total_on("2026-11-08") == 4_000
    assert late.assets.total_on("2026-11-10") == 4_000


def test_an_event_older_than_the_grace_period_is_refused_with_the_reason() -> None:
    state = _apply(_start(), _tx(10, "credit", 0.0))
    with pytest.raises(TooLateError, match="2026-11-06 is more than 3 days before"):
        _apply(state, _tx(6, "debit", 6_000))
    assert issubclass(TooLateError, InvalidEventError)  # so the worker dead-letters it


def test_a_late_correction_of_a_closed_day_can_clear_the_flag() -> None:
    state = _apply(_start(), _tx(1, "debit", 9_000))
    state, alerts = _close(state, "2026-11-03")
    assert alerts
    assert state.churn_risk is not None
    # A deposit dated Nov 2 (within grace) puts the money back: the flag clears.
    state = _apply(state, _tx(2, "credit", 9_000, hour=15))
    assert state.churn_risk is None
    assert state.assets.total_on("2026-11-02") == 10_000


def test_the_flag_clears_when_the_balance_recovers_or_the_month_ends() -> None:
    state = _apply(_start(), _tx(1, "debit", 9_000))
    state, _ = _close(state, "2026-11-05")
    assert state.churn_risk is not None
    recovered = _apply(state, _tx(6, "credit", 5_000))  # 6,000 >= 50% of 10,000
    assert recovered.churn_risk is None
    state, _ = _close(state, "2026-12-02")  # still drained, but December has begun
    assert state.churn_risk is None or state.churn_risk.day.startswith("2026-12")


def test_no_alert_without_three_months_of_history() -> None:
    state = _apply(_start(months={"2026-10": 11_000.0}), _tx(1, "debit", 9_000))
    state, alerts = _close(state, "2026-11-30")
    assert alerts == []


def test_a_retention_alert_replaces_the_cross_sell_offer_while_flagged() -> None:
    bundle = _two_segment_bundle()
    active = ActiveView("v1", bundle, OfferIndex(bundle))
    features = (0.0,) * len(bundle.segment_model.features)
    state = _apply(_start(), _tx(1, "debit", 9_000))
    state = replace(state, features=features)
    state, _ = _close(state, "2026-11-02")
    assert state.churn_risk is not None
    opened = Transaction(
        "e-open", "c", datetime.fromisoformat("2026-11-02T10:00:00+08:00"), "保险", "credit", 100.0
    )
    after = apply_transaction(
        state, opened, catalog=CATALOG, source="t:0", offset=next(_offsets), churn=POLICY
    )
    stored, alerts = after_event(
        state, after, event_id="e-open", ts=opened.ts, active=active, policy=ContactPolicy()
    )
    assert [kind for kind, _ in alerts] == ["retention"]
    retention = json.loads(alerts[0][1])
    assert retention["churn"]["drop"] == 0.9
    assert retention["instead_of"] in bundle.items
    # One retention alert per churn episode (the cool-down), then nothing.
    assert stored is not None
    again = apply_transaction(
        stored, opened, catalog=CATALOG, source="t:0", offset=next(_offsets), churn=POLICY
    )
    assert (
        after_event(
            stored, again, event_id="e2", ts=opened.ts, active=active, policy=ContactPolicy()
        )[1]
        == []
    )


def test_a_snapshot_row_carries_the_months_table() -> None:
    from training.generate import generate_retail

    row = generate_retail(1, seed=3, dirty_share=0.0).to_dict("records")[0]
    row |= {"as_of": "2026-10-31", "months": MONTHS}
    state = apply_snapshot(
        CustomerState(row["客户编号"]), row, RETAIL_SCHEMA, unknown="stop", source="s:0", offset=0
    )
    assert state is not None
    assert state.assets.months == MONTHS
    assert state.assets.since == "2026-10-31"
    for bad, reason in (({"as_of": "31/10/2026"}, "as_of"), ({"months": {"2026-13": 1}}, "months")):
        with pytest.raises(InvalidEventError, match=reason):
            apply_snapshot(
                CustomerState("c"), row | bad, RETAIL_SCHEMA, unknown="stop", source="s:0", offset=1
            )


@given(
    st.lists(
        st.tuples(st.integers(1, 28), st.sampled_from(["credit", "debit"]), st.integers(0, 9_000)),
        max_size=12,
    ),
    st.lists(st.integers(2, 60), max_size=6),
)
@settings(max_examples=400)
def test_when_days_are_closed_does_not_change_the_outcome(
    moves: list[tuple[int, str, int]], closes: list[int]
) -> None:
    """Closing day by day, in bursts or once at the end gives the same history and alerts."""
    state = _start()
    for day, kind, amount in sorted(moves):
        state = _apply(state, _tx(day, kind, min(amount, state.balances["存款"])))

    def run(points: list[int]) -> tuple[AssetHistory, list[dict]]:
        current, raised = state, []
        for point in [*sorted(points), 61]:
            until = datetime(2026, 11, 1) + timedelta(days=point - 1)
            current, alerts = _close(current, until.date().isoformat())
            raised += alerts
        return current.assets, [a["figures"] for a in raised]

    assert run(closes) == run([])


def test_history_survives_its_json_form_and_old_months_fold() -> None:
    state = _apply(_start(), _tx(1, "debit", 9_000))
    state, _ = _close(state, "2026-12-10")
    assert decode_state(encode_state(state)) == state
    # November is past the grace period on Dec 10: folded to one average; August dropped.
    assert state.assets.months["2026-11"] == pytest.approx(1_000.0)
    assert "2026-08" not in state.assets.months
    assert state.assets.days == {"2026-11-01": 1_000.0}  # the last change carries forward
    assert close_days(state.assets, "2026-12-10", POLICY) == (state.assets, [])


def test_a_month_with_no_event_keeps_its_average_when_folded() -> None:
    """November is carried forward whole (no event): its average must outlive the days
    it was carried from, or January would have no baseline (found by the property below)."""
    state = _apply(_start(), _tx(5, "debit", 5_533, month=12))
    state, _ = _close(state, "2027-01-10")
    assert state.assets.months["2026-11"] == pytest.approx(10_000.0)
    figures = drop_on(state.assets, "2027-01-09")
    assert figures is not None
    assert figures.baseline_months == ("2026-12", "2026-11", "2026-10")


@given(
    st.lists(
        st.tuples(st.integers(1, 75), st.sampled_from(["credit", "debit"]), st.integers(0, 9_000)),
        max_size=10,
    ),
    st.floats(0.2, 0.8),
)
@settings(max_examples=400)
def test_judging_only_when_due_raises_the_same_alerts_as_judging_every_day(
    moves: list[tuple[int, str, int]], threshold: float
) -> None:
    """A silent customer is judged only on the day `due` names; nothing is missed."""
    policy = ChurnPolicy(threshold=threshold, grace_days=3)
    first = datetime.fromisoformat("2026-11-01T10:00:00+08:00")
    by_day: dict[int, list[tuple[str, int]]] = {}
    for day, kind, amount in moves:
        by_day.setdefault(day, []).append((kind, amount))

    def run(lazy: bool) -> list[dict]:
        state, raised = _start(policy=policy), []
        clocks = PartitionClocks()
        clocks.track(0, state)
        clocks.advance(0, "2026-10-31")
        for day in range(1, 91):
            at = first + timedelta(days=day - 1)
            judge = clocks.advance(0, at.date().isoformat())
            if judge if lazy else True:
                closed, alerts = after_day_close(state, at, active=None, churn=policy)
                state = closed or state
                clocks.track(0, state)
                raised += [json.loads(a)["figures"] for _, a in alerts]
            for kind, amount in by_day.get(day, []):
                tx = Transaction(
                    f"e{day}",
                    "c",
                    at,
                    "存款",
                    kind,
                    min(amount, state.balances["存款"]) if kind == "debit" else amount,
                )
                after = apply_transaction(
                    state, tx, catalog=CATALOG, source="t:0", offset=next(_offsets), churn=policy
                )
                assert after is not None
                state = after
            clocks.track(0, state)
        return raised

    assert run(lazy=True) == run(lazy=False)


CORPORATE_ROW = {
    "行业": "制造业",
    "成立年限": 8,
    "注册资本": 5_000_000,
    "员工人数": 40,
    "存款月日均": 900_000.5,
    "贷款余额": 0,
    "产品持有数": 6,  # the stream's own count replaces it
    "近一年交易天数": 120,
}


def _churn_model(threshold: float) -> ScoringModel:
    """p = sigmoid(0.5 * products held - 1): nothing else counts."""
    inputs = learn_inputs(feature_inputs(CHURN), pd.DataFrame({"行业": INDUSTRIES}))
    columns = encoded_columns(inputs)
    n = len(columns)
    coef = tuple(0.5 if c == "产品持有数" else 0.0 for c in columns)
    estimator = LogisticModel((0.0,) * n, (1.0,) * n, coef, -1.0)
    return ScoringModel("churn", "test", "logistic_regression", inputs, estimator, threshold, "t")


def test_a_churn_alert_carries_the_churn_model_probability_from_snapshot_and_stream() -> None:
    from training.generate import generate_retail

    bundle = _two_segment_bundle()
    with_model = replace(bundle, churn_model=_churn_model(0.3))
    row = generate_retail(1, seed=3, dirty_share=0.0).to_dict("records")[0]
    row |= {"as_of": "2026-10-31", "months": MONTHS, **CORPORATE_ROW}
    loaded = apply_snapshot(
        CustomerState(row["客户编号"]), row, RETAIL_SCHEMA, unknown="stop", source="s:0", offset=0
    )
    assert loaded is not None
    assert loaded.corporate == {k: v if k == "行业" else float(v) for k, v in CORPORATE_ROW.items()}
    assert loaded.corporate_as_of == "2026-10-31"
    drained = loaded
    for product, balance in loaded.balances.items():
        if product != "贷款和信用卡" and balance:
            drained = _apply(drained, replace(_tx(1, "debit", balance), product=product))
    held = drained.held_in(CATALOG).bit_count()

    def churn_alert_with(active: ActiveView | None, state: CustomerState) -> dict:
        stored, alerts = after_day_close(
            state, datetime.fromisoformat("2026-11-02T08:00:00+08:00"), active=active, churn=POLICY
        )
        assert stored is not None
        assert [kind for kind, _ in alerts] == ["churn"]
        return json.loads(alerts[0][1])

    alert = churn_alert_with(ActiveView("v2", with_model, OfferIndex(with_model)), drained)
    expected = 1 / (1 + math.exp(-(0.5 * held - 1.0)))
    assert alert["model"] == {
        "kind": "logistic_regression",
        "threshold": 0.3,
        "from_holdings": ["产品持有数"],
        "from_corporate": [n for n in CORPORATE_ROW if n != "产品持有数"],
        "corporate_as_of": "2026-10-31",
        "unseen_values": [],
        "probability": round(expected, 4),
        "predicted": expected >= 0.3,
    }
    assert f"the churn model gives {expected:.1%}" in alert["explanation"]
    # Without corporate fields: no probability, and why; without a model: no "model" at all.
    bare = replace(drained, corporate={}, corporate_as_of=None)
    missing = churn_alert_with(ActiveView("v2", with_model, OfferIndex(with_model)), bare)["model"]
    assert missing["probability"] is None
    assert "行业" in missing["reason"]
    assert "model" not in churn_alert_with(ActiveView("v1", bundle, OfferIndex(bundle)), drained)
    with pytest.raises(InvalidEventError, match="'员工人数' must be a finite number"):
        apply_snapshot(
            CustomerState("c"),
            row | {"员工人数": "forty"},
            RETAIL_SCHEMA,
            unknown="stop",
            source="s:0",
            offset=1,
        )


def test_the_stream_keeps_every_input_of_the_trained_churn_model() -> None:
    assert tuple(s.name for s in feature_inputs(CHURN)) == CORPORATE_FIELDS


@pytest.mark.parametrize(("daily_credit", "most"), [(None, 1), (10.0, 2)])
def test_a_customer_far_above_the_floor_is_judged_about_every_other_month(
    daily_credit: float | None, most: int
) -> None:
    """90 days from a snapshot, silent or with a small credit every day: the days when
    the partition's clock hands the customer over for judging."""
    state, clocks, judged_on = _start(), PartitionClocks(), []
    clocks.track(0, state)
    clocks.advance(0, "2026-10-31")
    first = datetime.fromisoformat("2026-11-01T10:00:00+08:00")
    for day in range(90):
        at = first + timedelta(days=day)
        for closed, _ in clocks.close_days(
            0, at, {"c": state}.__getitem__, active=None, churn=POLICY
        ):
            state = closed
            judged_on.append(at.date().isoformat())
        if daily_credit is not None:
            state = _apply(state, replace(_tx(1, "credit", daily_credit), ts=at))
            clocks.track(0, state)
    assert 1 <= len(judged_on) <= most, judged_on
