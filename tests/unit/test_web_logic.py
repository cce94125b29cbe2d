"""Pure parts of the API: metrics text, predict validation and churn figures, alert filters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_store.metrics import EngineMetrics, Histogram, render_prometheus
from rules_store.predict import RequestError, churn_figures, parse_predict_request
from rules_store.schema import RETAIL_SCHEMA
from streams.live_alerts import AlertFilter

PROFILE = {f.name: 0 for f in RETAIL_SCHEMA.segment_fields} | {
    "性别": "女",
    "学历": "本科",
    "婚姻状况": "已婚",
    "风险评级": "中风险",
    "储蓄产品偏好": "高",
    "理财产品偏好": "低",
    "保险产品偏好": "中",
    "基金产品偏好": "低",
    "交易渠道偏好": "ATM",
}


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_histogram_buckets_are_cumulative_and_end_at_the_count(values: list[float]) -> None:
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    cumulative = histogram.cumulative()
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == histogram.count == len(values)


def test_metrics_count_alerts_by_type_and_time_only_event_triggered_ones() -> None:
    metrics = EngineMetrics()
    metrics.count_alerts(["cross_sell", "churn"], event_ts_s=100.0, now_s=100.04)
    metrics.count_alerts(["churn"])  # a day close: no event to time
    metrics.count_dead_letter()
    metrics.count_events("transactions", 7)
    text = render_prometheus(metrics, bundle_version=None, lag={})
    assert 'xsell_alerts_total{type="churn"} 2' in text
    assert 'xsell_alerts_total{type="retention"} 0' in text
    assert 'xsell_event_to_alert_seconds_bucket{le="0.025"} 0' in text
    assert 'xsell_event_to_alert_seconds_bucket{le="0.05"} 2' in text
    assert "xsell_event_to_alert_seconds_count 2" in text
    assert 'xsell_events_in_total{input="transactions"} 7' in text
    assert "xsell_dead_letters_total 1" in text
    assert "xsell_bundle_info{" not in text  # no bundle: no version sample


def test_predict_request_takes_balances_instead_of_holdings() -> None:
    request = parse_predict_request(
        {"profile": PROFILE, "balances": {"国债余额": 10.0, "积利宝余额": 5}}, RETAIL_SCHEMA
    )
    assert request.held == 0b100100  # 基金和积利宝 | 国债


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"profile": PROFILE}, "holdings"),
        ({"profile": PROFILE, "holdings": [], "balances": {}}, "holdings"),
        ({"profile": PROFILE, "balances": {"国债余额": -1}}, "balances.国债余额"),
        ({"profile": PROFILE, "balances": {"余额": 1}}, "balances"),
        ({"profile": PROFILE, "holdings": [], "top_k": 0}, "top_k"),
        ({"profile": PROFILE, "holdings": [], "top_k": True}, "top_k"),
        ({"profile": PROFILE, "holdings": [], "customer_id": 7}, "customer_id"),
        ({"profile": PROFILE, "holdings": [], "asset_months": {"2026-13": 1}}, "asset_months"),
        (
            {"profile": PROFILE, "holdings": [], "asset_months": {"2026-01": "x"}},
            "asset_months.2026-01",
        ),
        (
            {"profile": {k: v for k, v in PROFILE.items() if k != "年龄"}, "holdings": []},
            "profile.年龄",
        ),
        ({"profile": PROFILE, "holdings": [], "corporate": {"员工人数": "many"}}, "corporate"),
        ({"profile": PROFILE, "holdings": [], "corporate": {"姓名": "x"}}, "corporate"),
    ],
)
def test_predict_request_names_the_field_that_is_wrong(body: dict[str, object], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_predict_request(body, RETAIL_SCHEMA)
    assert caught.value.field == field
    assert caught.value.to_json()["message"]


def test_churn_figures_need_the_three_months_before_the_latest() -> None:
    assert churn_figures({}, 0.5) is None
    missing = churn_figures({"2026-10": 100, "2026-11": 10}, 0.5)
    assert missing is not None
    assert missing["at_risk"] is None
    assert "2026-08" in missing["reason"]
    steady = churn_figures({"2026-08": 100, "2026-09": 100, "2026-10": 100, "2026-11": 60}, 0.5)
    assert steady is not None
    assert steady["drop"] == 0.4
    assert steady["at_risk"] is False


def test_alert_filter_keeps_only_the_wanted_types_branches_and_segments() -> None:
    alert = {"type": "churn", "branch_id": "b1", "segment": 2}
    assert AlertFilter().matches(alert)
    assert AlertFilter(types=frozenset({"churn"}), segments=frozenset({2})).matches(alert)
    assert not AlertFilter(types=frozenset({"cross_sell"})).matches(alert)
    assert not AlertFilter(branches=frozenset({"b2"})).matches(alert)
    assert not AlertFilter(segments=frozenset({1})).matches(alert)


def test_predict_gives_the_churn_model_probability_when_the_bundle_has_one() -> None:
    from dataclasses import replace

    from rules_store.offers import OfferIndex
    from rules_store.predict import predict
    from tests.unit.test_churn import CORPORATE_ROW, _churn_model
    from tests.unit.test_contact_policy import _two_segment_bundle

    bundle = _two_segment_bundle()
    with_model = replace(bundle, churn_model=_churn_model(0.3))
    body = {"profile": PROFILE, "holdings": ["存款", "国债"], "corporate": CORPORATE_ROW}
    request = parse_predict_request(body, RETAIL_SCHEMA)
    answer = predict(request, ("v2", with_model, OfferIndex(with_model)), threshold=0.5)
    expected = 1 / (1 + math.exp(-(0.5 * 2 - 1.0)))  # two products held
    assert answer["churn"]["model"]["probability"] == round(expected, 4)
    assert answer["churn"]["model"]["corporate_as_of"] is None
    bare = parse_predict_request({**body, "corporate": {}}, RETAIL_SCHEMA)
    reason = predict(bare, ("v2", with_model, OfferIndex(with_model)), threshold=0.5)
    assert reason["churn"]["model"]["probability"] is None
    assert "行业" in reason["churn"]["model"]["reason"]
    without = predict(request, ("v1", bundle, OfferIndex(bundle)), threshold=0.5)
    assert "no churn model" in without["churn"]["model"]["reason"]
