"""The outcomes loop through a real worker: an offer, the branch's answer (API and CLI),
the counts in Redis and `xsell bundles report`, the customer's offers and value."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rules_store.domain.acceptance import Tally
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.store.redis_store import open_redis
from tests.cli import run_cli
from tests.integration.reading import read_json
from tests.integration.web_engine import Engine, request, running_engine
from xsell.embedded import EmbeddedStack

WAIT_S = 60.0


@pytest.fixture(scope="module")
def engine(stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(stack, tmp_path_factory.mktemp("outcomes"), workers=1) as running:
        yield running


def _credit(customer: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "ts": "2026-11-23T10:00:00+08:00",
        "product": "理财",
        "kind": "credit",
        "amount": 10_000.0,
        "branch_id": "b07",
    } | fields


def _alerts_for(engine: Engine, customers: set[str], want: int) -> list[dict[str, Any]]:
    found = read_json(engine.settings, engine.stack.endpoints, engine.names.cross_sell_alerts, want)
    return [a for a in found if a["customer_id"] in customers]


def _counts(engine: Engine) -> Tally:
    store = AcceptanceStore(
        open_redis(engine.settings, engine.stack.endpoints), engine.settings.redis_key_prefix
    )
    return sum(store.read(engine.version).values(), Tally())


def _wait(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {WAIT_S}s")


def test_an_answer_through_the_api_and_the_cli_is_counted_once_and_reported(
    engine: Engine,
    stack_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XSELL_TOPIC_PREFIX", engine.settings.topic_prefix)  # the CLI's view
    monkeypatch.setenv("XSELL_REDIS_KEY_PREFIX", engine.settings.redis_key_prefix)
    first, second = engine.rows[0]["客户编号"], engine.rows[1]["客户编号"]
    engine.send_transactions([_credit(first, "o-1"), _credit(second, "o-2")])
    alerts = _wait(
        "two offers", lambda: (a := _alerts_for(engine, {first, second}, 2)) and len(a) == 2 and a
    )
    by_customer = {a["customer_id"]: a for a in alerts}
    assert all(a["alert_id"].startswith(f"{a['customer_id']}:") for a in alerts)
    assert all(a["arm"] == "champion" and 0 <= a["value"] <= 100 for a in alerts)
    assert all("acceptance" in a["evidence"] for a in alerts)  # the learned factor, shown

    url = engine.workers[0].url
    body = json.dumps(
        {
            "alert_id": by_customer[first]["alert_id"],
            "outcome": "accepted",
            "channel": "branch",
            "branch_id": "b07",
        }
    ).encode()
    reply = request(f"{url}/outcomes", method="POST", body=body)
    assert reply.status == 202, reply.body
    assert reply.json()["customer_id"] == first
    bad = request(f"{url}/outcomes", method="POST", body=b'{"alert_id": "x", "outcome": "yes"}')
    assert bad.status == 400
    assert "is not an offer's alert id" in bad.json()["message"]
    assert request(f"{url}/outcomes", method="POST", body=body, token=None).status == 401

    code, text = run_cli(["outcome", by_customer[second]["alert_id"], "declined"], capsys)
    assert code == 0, text
    # The same answer again, as a retrying branch app would send it: counted once.
    reply = request(f"{url}/outcomes", method="POST", body=body)
    assert reply.status == 202

    _wait("counts in Redis", lambda: _counts(engine) == Tally(accepted=1, declined=1, sent=2))
    customer = request(f"{url}/customers/{second}").json()
    assert customer["contact"]["declined"].keys() == {by_customer[second]["product"]}
    assert [s["outcome"] for s in customer["offers_sent"]["settled"]] == ["declined"]
    assert 0 <= customer["value"] <= 100

    code, text = run_cli(["bundles", "report"], capsys)
    assert code == 0, text
    assert "50.0%" in text  # one accepted of two settled
    acceptance = request(f"{url}/acceptance").json()
    assert acceptance["arms"][0]["accepted"] == 1

    # An answer for an alert the customer was never sent is dead-lettered, with why.
    stranger = f"{first}:{'0' * 32}"
    code, text = run_cli(["outcome", stranger, "accepted"], capsys)
    assert code == 0, text  # the CLI cannot know; the worker that holds the customer does
    letters = _wait(
        "the dead letter",
        lambda: [
            d
            for d in read_json(
                engine.settings, engine.stack.endpoints, engine.names.dead_letters, 1
            )
            if "unknown alert" in d["reason"]
        ],
    )
    assert stranger in letters[0]["reason"]
