"""Pure parts of the API: metrics text, predict validation and churn figures, alert filters."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.strict_json import JSONInputError, dumps_strict, loads_strict
from rules_store.views.metrics import EngineMetrics, Histogram, render_prometheus
from rules_store.views.predict import RequestError, churn_figures, parse_predict_request
from streams.web.answers import valid_customer_id
from streams.web.auth import token_matches
from streams.web.live_feed import AlertFilter

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
        # Numbers JSON can hold but a float cannot, or that no bank figure reaches:
        (
            {"profile": PROFILE, "holdings": [], "asset_months": {"2026-01": 10**400}},
            "asset_months.2026-01",
        ),
        (
            {"profile": PROFILE, "holdings": [], "asset_months": {"2026-01": math.nan}},
            "asset_months.2026-01",
        ),
        ({"profile": PROFILE, "balances": {"国债余额": math.inf}}, "balances.国债余额"),
        ({"profile": PROFILE, "balances": {"国债余额": 2e15}}, "balances.国债余额"),
        (
            {"profile": PROFILE, "holdings": [], "corporate": {"员工人数": 10**400}},
            "corporate.员工人数",
        ),
        (
            {"profile": PROFILE, "holdings": [], "corporate": {"注册资本": -math.inf}},
            "corporate.注册资本",
        ),
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


def test_churn_figures_stay_finite_when_the_baseline_is_tiny() -> None:
    tiny = 5e-324  # 1e15 / tiny overflows to inf
    figures = churn_figures(
        {"2026-08": tiny, "2026-09": tiny, "2026-10": tiny, "2026-11": 1e15}, 0.5
    )
    assert figures is not None
    assert figures["drop"] is None
    assert figures["at_risk"] is False
    json.loads(dumps_strict(figures))  # strict JSON out


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "body", "nested deeper than 32"),
        (b"[" * 33 + b"]" * 33, "body", "nested deeper than 32"),
        (b'{"a": {"b": [1, NaN]}}', "a.b[1]", "NaN"),
        (b'{"a": -Infinity}', "a", "Infinity"),
        (b'{"a": 1e400}', "a", "Infinity"),
        (b"Infinity", "body", "Infinity"),
        (b'{"a": ' + b"9" * 5000 + b"}", "body", "4300 digits"),
        (b'{"a": "\xff"}', "body", "not JSON"),  # not UTF-8
        (b"{not json", "body", "not JSON"),
    ],
)
def test_loads_strict_refuses_what_rfc_8259_does_not_allow(
    raw: bytes, field: str, words: str
) -> None:
    with pytest.raises(JSONInputError) as caught:
        loads_strict(raw)
    assert caught.value.field == field
    assert words in caught.value.message


def test_loads_strict_takes_big_but_finite_numbers_and_32_levels() -> None:
    assert loads_strict(b"[" * 32 + b"]" * 32) is not None
    assert loads_strict(b'{"a": 1e308, "b": ' + b"9" * 401 + b"}")["b"] == int("9" * 401)


def test_dumps_strict_refuses_non_finite_figures() -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not JSON compliant"):
            dumps_strict({"drop": value})


@pytest.mark.parametrize(
    ("customer_id", "valid"),
    [
        ("1000000000000042", True),
        ("c.1_a-B", True),
        ("9" * 64, True),
        ("9" * 65, False),
        ("", False),
        (".", False),
        ("..", False),
        ("...", False),
        ("c1\n", False),  # `$` matched before a final newline
        ("\u0661\u0662", False),  # Arabic-Indic digits: \w is Unicode
        ("é", False),
        ("a/b", False),
    ],
)
def test_customer_ids_are_ascii_and_not_only_dots(customer_id: str, valid: bool) -> None:
    assert valid_customer_id(customer_id) is valid


def test_token_check_answers_false_for_any_bytes_a_client_sends() -> None:
    token = b"test-token"
    assert token_matches("test-token", token)
    header = b"\xff\xfe-token".decode("utf-8", "surrogateescape")  # as aiohttp decodes it
    assert not token_matches(header, token)
    assert not token_matches("t\u00e9st-token", token)
    assert token_matches("\u00e9", "\u00e9".encode())  # a non-ASCII token, sent as UTF-8


def test_alert_filter_keeps_only_the_wanted_types_branches_and_segments() -> None:
    alert = {"type": "churn", "branch_id": "b1", "segment": 2}
    assert AlertFilter().matches(alert)
    assert AlertFilter(types=frozenset({"churn"}), segments=frozenset({2})).matches(alert)
    assert not AlertFilter(types=frozenset({"cross_sell"})).matches(alert)
    assert not AlertFilter(branches=frozenset({"b2"})).matches(alert)
    assert not AlertFilter(segments=frozenset({1})).matches(alert)


def test_predict_gives_the_churn_model_probability_when_the_bundle_has_one() -> None:
    from dataclasses import replace

    from rules_store.domain.alerts import ActiveView
    from rules_store.domain.offers import OfferIndex
    from rules_store.views.predict import predict
    from tests.unit.test_churn import CORPORATE_ROW, _churn_model
    from tests.unit.test_contact_policy import _two_segment_bundle

    bundle = _two_segment_bundle()
    with_model = replace(bundle, churn_model=_churn_model(0.3))
    body = {"profile": PROFILE, "holdings": ["存款", "国债"], "corporate": CORPORATE_ROW}
    request = parse_predict_request(body, RETAIL_SCHEMA)
    answer = predict(request, ActiveView("v2", with_model, OfferIndex(with_model)), threshold=0.5)
    expected = 1 / (1 + math.exp(-(0.5 * 2 - 1.0)))  # two products held
    assert answer["churn"]["model"]["probability"] == round(expected, 4)
    assert answer["churn"]["model"]["corporate_as_of"] is None
    bare = parse_predict_request({**body, "corporate": {}}, RETAIL_SCHEMA)
    reason = predict(bare, ActiveView("v2", with_model, OfferIndex(with_model)), threshold=0.5)
    assert reason["churn"]["model"]["probability"] is None
    assert "行业" in reason["churn"]["model"]["reason"]
    without = predict(request, ActiveView("v1", bundle, OfferIndex(bundle)), threshold=0.5)
    assert "no churn model" in without["churn"]["model"]["reason"]


@pytest.mark.parametrize("age", [10**400, math.inf, "nan", "1e999"])
def test_predict_refuses_a_profile_number_that_is_not_finite(age: object) -> None:
    from rules_store.domain.alerts import ActiveView
    from rules_store.domain.offers import OfferIndex
    from rules_store.views.predict import predict
    from tests.unit.test_contact_policy import _two_segment_bundle

    bundle = _two_segment_bundle()
    request = parse_predict_request(
        {"profile": PROFILE | {"年龄": age}, "holdings": []}, RETAIL_SCHEMA
    )
    with pytest.raises(RequestError) as caught:
        predict(request, ActiveView("v1", bundle, OfferIndex(bundle)), threshold=0.5)
    assert caught.value.field == "profile.年龄"
    assert "finite number" in caught.value.message
