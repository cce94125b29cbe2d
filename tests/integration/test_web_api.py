"""The workers' REST API on the embedded stack: two `xsell worker` processes, one group."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA, encode_profile
from tests.integration.web_engine import MAX_BODY, TOKEN, Engine, request, running_engine
from xsell.embedded import EmbeddedStack

EVENT_TS = "2026-11-23T10:00:00+08:00"


@pytest.fixture(scope="module")
def engine(stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(stack, tmp_path_factory.mktemp("web"), workers=2) as running:
        yield running


def _profile(row: dict[str, Any]) -> dict[str, Any]:
    return {f.name: row[f.name] for f in RETAIL_SCHEMA.segment_fields}


def _credit(customer: str, event_id: str, branch: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "ts": EVENT_TS,
        "product": "理财",
        "kind": "credit",
        "amount": 10_000.0,
        "branch_id": branch,
    }


def test_health_is_public_and_each_worker_names_itself_and_its_partitions(engine: Engine) -> None:
    healths = [request(f"{w.url}/health", token=None).json() for w in engine.workers]
    assert [h["worker"] for h in healths] == [w.url for w in engine.workers]
    assert all(h["status"] == "ok" and h["bundle_version"] == engine.version for h in healths)
    owned = [set(h["partitions"]) for h in healths]
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == set(range(engine.settings.topic_partitions))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/metrics"),
        ("GET", "/customers/1"),
        ("POST", "/predict"),
        ("GET", "/bundle"),
        ("GET", "/alerts/stream"),
    ],
)
def test_api_answers_401_without_the_bearer_token_or_with_a_wrong_one(
    engine: Engine, method: str, path: str
) -> None:
    url = engine.workers[0].url + path
    body = b"{}" if method == "POST" else None
    # Latin-1 in a header is sent as those bytes: not UTF-8, which once made a 500.
    for token in (None, "wrong", "\xff\xfe", "t\xe9st"):
        reply = request(url, token=token, method=method, body=body)
        assert reply.status == 401, reply.body
        assert reply.json()["error"] == "unauthorized"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_dashboard_page_and_its_assets_load_without_the_token(engine: Engine) -> None:
    page = request(engine.workers[0].url + "/", token=None)
    assert page.status == 200
    assert b'<script src="/static/dashboard.js">' in page.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("dashboard.js", "dashboard.css"):
        assert request(f"{engine.workers[0].url}/static/{asset}", token=None).status == 200


def test_customer_lookup_is_answered_by_the_owner_whichever_worker_is_asked(
    engine: Engine,
) -> None:
    forwarded = 0
    for row in engine.rows:
        customer = row["客户编号"]
        replies = [request(f"{w.url}/customers/{customer}") for w in engine.workers]
        assert [r.status for r in replies] == [200, 200], [r.body for r in replies]
        first, second = (r.json() for r in replies)
        assert first == second
        owners = {r.headers["X-Xsell-Worker"] for r in replies}
        assert len(owners) == 1  # the same worker answered both
        owner = owners.pop()
        assert first["partition"] in set(
            request(f"{owner}/health", token=None).json()["partitions"]
        )
        forwarded += sum("X-Xsell-Routed-From" in r.headers for r in replies)
        assert first["customer_id"] == customer
        assert "理财" not in first["holdings"]["products"]  # chosen for lacking it
        assert first["bundle_version"] == engine.version
        assert first["segment"] == engine.bundle.segment_model.assign_segment(
            encode_profile(RETAIL_SCHEMA, row)
        )
        assert first["offers"], first
        assert first["churn"]["model"]["probability"] is None
        assert "no churn model" in first["churn"]["model"]["reason"]
    assert forwarded == len(engine.rows)  # each lookup was forwarded by exactly one worker


def test_customer_lookup_refuses_bad_ids_and_reports_unknown_customers(engine: Engine) -> None:
    url = engine.workers[0].url
    # Too long; only dots; a final newline (`$` let it through); non-ASCII digits (\w did).
    for bad_id in ("9" * 65, "%2E%2E", "%2E", "c1%0A", "%D9%A1%D9%A2", "%C3%A9"):
        bad = request(f"{url}/customers/{bad_id}")
        assert bad.status == 400, (bad_id, bad.body)
        assert bad.json()["field"] == "customer_id"
    unknown = request(f"{url}/customers/no-such-customer")
    assert unknown.status == 404
    assert unknown.json()["error"] == "not_found"


def test_predict_gives_the_bundles_segment_and_offers_with_their_rules(engine: Engine) -> None:
    row = engine.rows[0]
    held = ["存款", "国债"]
    body = {
        "customer_id": "p1",
        "profile": _profile(row),
        "holdings": held,
        "asset_months": {"2026-08": 1000, "2026-09": 1000, "2026-10": 1000, "2026-11": 300},
    }
    reply = request(
        f"{engine.workers[1].url}/predict", method="POST", body=json.dumps(body).encode()
    )
    assert reply.status == 200, reply.body
    answer = reply.json()
    segment = engine.bundle.segment_model.assign_segment(encode_profile(RETAIL_SCHEMA, row))
    assert answer["segment"] == segment
    expected = engine.bundle.recommend(0b100001, segment)  # 存款 | 国债
    assert [o["product"] for o in answer["offers"]] == [
        engine.bundle.items[o.item] for o in expected
    ]
    for offer, want in zip(answer["offers"], expected, strict=True):
        if want.rule is not None:
            assert offer["rule"]["confidence"] == want.rule.confidence
            assert offer["rule"]["lift"] == want.rule.lift
    assert answer["churn"]["figures"]["at_risk"] is True
    assert answer["churn"]["figures"]["drop"] == 0.7
    assert answer["churn"]["model"]["probability"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (json.dumps({"holdings": []}).encode(), 400, "profile"),
        (json.dumps({"profile": {"年龄": 30}, "holdings": []}).encode(), 400, "profile.性别"),
        (b'{"surprise": 1}', 400, "surprise"),
        # Numbers strict JSON has not, or a float cannot hold (each once a 200 with NaN in
        # the answer, or a 500); nesting that made json.loads recurse too deep (a 500).
        (b'{"asset_months": {"2026-01": NaN}}', 400, "asset_months.2026-01"),
        (b'{"asset_months": {"2026-01": Infinity}}', 400, "asset_months.2026-01"),
        (b'{"asset_months": {"2026-01": 1e400}}', 400, "asset_months.2026-01"),
        (b"[" * 2_000 + b"]" * 2_000, 400, "body"),  # under MAX_BODY, past the recursion limit
        (b'{"a": ' * 40 + b"1" + b"}" * 40, 400, "body"),
    ],
)
def test_predict_refuses_bad_requests_naming_the_field(
    engine: Engine, body: bytes, status: int, field: str
) -> None:
    reply = request(f"{engine.workers[0].url}/predict", method="POST", body=body)
    assert reply.status == status, reply.body
    assert reply.json()["field"] == field
    assert reply.json()["message"]


def test_predict_refuses_unknown_products_and_values_outside_a_fields_list(engine: Engine) -> None:
    profile = _profile(engine.rows[0])
    url = f"{engine.workers[0].url}/predict"
    for field, value in (("asset_months", {"2026-01": 10**400}), ("balances", {"国债余额": 2e15})):
        figures = {"profile": profile, "holdings": []} | {field: value}
        if field == "balances":
            del figures["holdings"]
        huge = request(url, method="POST", body=json.dumps(figures).encode())
        assert huge.status == 400, huge.body
        assert huge.json()["field"] == f"{field}.{next(iter(value))}"
    age = request(
        url,
        method="POST",
        body=json.dumps({"profile": profile | {"年龄": 10**400}, "holdings": []}).encode(),
    )
    assert age.status == 400, age.body
    assert age.json()["field"] == "profile.年龄"
    unknown = request(
        url, method="POST", body=json.dumps({"profile": profile, "holdings": ["比特币"]}).encode()
    )
    assert unknown.status == 400
    assert unknown.json()["field"] == "holdings"
    assert "比特币" in unknown.json()["message"]
    outside = request(
        url,
        method="POST",
        body=json.dumps({"profile": profile | {"风险评级": "极高"}, "holdings": []}).encode(),
    )
    assert outside.status == 400, outside.body
    assert outside.json()["field"] == "profile.风险评级"


def test_predict_refuses_large_bodies_and_other_media_types(engine: Engine) -> None:
    url = f"{engine.workers[0].url}/predict"
    huge = json.dumps({"profile": {"x": "y" * MAX_BODY}, "holdings": []}).encode()
    too_large = request(url, method="POST", body=huge)
    assert too_large.status == 413
    assert too_large.json()["error"] == "too_large"
    form = request(
        url, method="POST", body=b"a=1", content_type="application/x-www-form-urlencoded"
    )
    assert form.status == 415


def test_bundle_lists_every_rule_of_every_segment(engine: Engine) -> None:
    answer = request(f"{engine.workers[0].url}/bundle").json()
    assert answer["version"] == engine.version
    assert [len(s["rules"]) for s in answer["segments"]] == [
        len(s.rules) for s in engine.bundle.segments
    ]


class EventStream:
    """`GET /alerts/stream` read in a thread, its events in a queue."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.conn.request("GET", f"{parts.path}?{parts.query}")
        self.response = self.conn.getresponse()
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind, data = "message", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and data:
                    self.events.put((kind, json.loads(data)))
                    kind, data = "message", ""
        except Exception:  # closed under the reader by close(): the stream is over
            return

    def next_alerts(self, within_s: float) -> list[dict[str, Any]]:
        found, deadline = [], time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                kind, data = self.events.get(timeout=0.5)
            except queue.Empty:
                if found:
                    break
                continue
            if kind == "alert":
                found.append(data)
        return found

    def close(self) -> None:
        self.response.close()
        self.conn.close()


def test_alert_stream_sends_live_alerts_filtered_by_type_and_branch(engine: Engine) -> None:
    url = engine.workers[0].url
    bad = request(f"{url}/alerts/stream?type=spam")
    assert bad.status == 400
    assert bad.json()["field"] == "type"
    stream = EventStream(f"{url}/alerts/stream?type=cross_sell&branch=b-web&access_token={TOKEN}")
    try:
        assert stream.response.status == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        hello = stream.events.get(timeout=15)
        assert hello[0] == "hello"
        assert hello[1]["bundle_version"] == engine.version
        # Customers on both workers' partitions; only the b-web ones are wanted.
        rows = engine.rows[:6]
        engine.send_transactions(
            [
                _credit(r["客户编号"], f"s{i}", "b-web" if i % 2 == 0 else "b-other")
                for i, r in enumerate(rows)
            ]
        )
        alerts: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(alerts) < 3 and time.monotonic() < deadline:
            alerts += stream.next_alerts(within_s=5)
    finally:
        stream.close()
    assert {a["customer_id"] for a in alerts} == {r["客户编号"] for r in rows[::2]}
    assert all(a["type"] == "cross_sell" and a["branch_id"] == "b-web" for a in alerts)
    assert all(a["evidence"] for a in alerts)


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_events_alerts_dead_letters_and_latency(engine: Engine) -> None:
    def totals() -> dict[str, float]:
        summed: dict[str, float] = {}
        for worker in engine.workers:
            reply = request(f"{worker.url}/metrics")
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            for name, value in _samples(reply.body.decode()).items():
                summed[name] = summed.get(name, 0) + value
        return summed

    before = totals()
    rows = engine.rows[6:10]
    engine.send_transactions([_credit(r["客户编号"], f"m{i}", "b-m") for i, r in enumerate(rows)])
    engine.send(engine.names.transactions, [("x", b"{broken")])
    deadline = time.monotonic() + 30
    after = before
    while time.monotonic() < deadline:
        after = totals()
        if after["xsell_dead_letters_total"] > before["xsell_dead_letters_total"] and (
            after['xsell_alerts_total{type="cross_sell"}']
            >= before['xsell_alerts_total{type="cross_sell"}'] + len(rows)
        ):
            break
        time.sleep(0.5)
    assert after['xsell_events_in_total{input="transactions"}'] == (
        before['xsell_events_in_total{input="transactions"}'] + len(rows) + 1
    )
    assert after["xsell_dead_letters_total"] == before["xsell_dead_letters_total"] + 1
    assert after['xsell_alerts_total{type="cross_sell"}'] == (
        before['xsell_alerts_total{type="cross_sell"}'] + len(rows)
    )
    assert after["xsell_event_to_alert_seconds_count"] >= len(rows)
    assert (
        after['xsell_event_to_alert_seconds_bucket{le="+Inf"}']
        == after["xsell_event_to_alert_seconds_count"]
    )
    assert after[f'xsell_bundle_info{{version="{engine.version}"}}'] == 2  # one per worker
    assert any(name.startswith("xsell_consumer_lag{") for name in after)


def test_token_setting_is_never_echoed(engine: Engine) -> None:
    for worker in engine.workers:
        assert TOKEN not in worker.log_path.read_text(errors="replace")
        assert TOKEN not in request(f"{worker.url}/health", token=None).body.decode()
