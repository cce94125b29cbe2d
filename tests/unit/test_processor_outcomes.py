"""Outcomes through the worker's per-batch logic: answers, conversions, cool-down, counts
that survive a crash, champion and challenger, the customer value in alerts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest

from rules_store.domain.acceptance import AdaptivePolicy, ArmKey, PartitionBook, Tally
from rules_store.domain.alerts import ActiveView
from rules_store.domain.offers import OfferIndex
from rules_store.domain.state_codec import decode_book, decode_state, encode_book
from streams.processing.outbox import Record
from streams.processing.processor import Policies, Processor, book_key
from tests.unit.test_processor import NAMES, ListSender, _commit, _snapshot, _tx, active, rows
from tests.unit.test_processor import _processor as processor_of

__all__ = ["active", "rows"]  # fixtures


def _processor(
    active: ActiveView, *, table: dict[str, bytes] | None = None, **options: Any
) -> tuple[Processor, ListSender, dict[str, bytes]]:
    """test_processor's, ranking without Thompson's exploration (the ranker's order)."""
    policies = Policies(adaptive=AdaptivePolicy(thompson=False))
    return processor_of(active, table=table, policies=policies, **options)


def _run(processor: Processor, batch: Coroutine[Any, Any, None]) -> None:
    """A batch, then a commit: what the table holds is what the changelog got."""
    asyncio.run(batch)
    _commit(processor)


def _answer(offset: int, alert: dict[str, Any], outcome: str, *, key: str | None = None) -> Record:
    value = {"alert_id": alert["alert_id"], "outcome": outcome, "ts": "2026-11-24T10:00:00+08:00"}
    customer = key or alert["customer_id"]
    return Record(NAMES.outcomes, 0, offset, customer.encode(), json.dumps(value).encode())


def _offer(processor: Processor, sender: ListSender, customer: str, offset: int) -> dict[str, Any]:
    _run(processor, processor.transactions([_tx(offset, customer)]))
    offers = [a for a in sender.on(NAMES.cross_sell_alerts) if a["customer_id"] == customer]
    assert offers, "the new holding brings an offer"
    return offers[-1]


def _book(table: dict[str, bytes]) -> dict[ArmKey, Tally]:
    return dict(decode_book(table[book_key(0)]).book)


def test_an_answer_is_counted_once_and_a_bad_one_is_dead_lettered(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    customer = rows[0]["客户编号"]
    alert = _offer(processor, sender, customer, 10)
    assert alert["alert_id"].startswith(f"{customer}:")
    assert alert["arm"] == "champion"
    assert 0 <= alert["value"] <= 100
    key = ArmKey("v1", alert["segment"], alert["product"])
    assert _book(table) == {key: Tally(sent=1)}

    _run(processor, processor.outcomes([_answer(0, alert, "accepted")]))
    assert _book(table) == {key: Tally(accepted=1, sent=1)}
    # The same record again (a restarted worker), then a second answer: nothing more.
    _run(
        processor,
        processor.outcomes([_answer(0, alert, "accepted"), _answer(1, alert, "declined")]),
    )
    assert _book(table) == {key: Tally(accepted=1, sent=1)}

    stranger = dict(alert, alert_id=f"{customer}:{'0' * 32}")
    _run(
        processor,
        processor.outcomes(
            [
                _answer(2, stranger, "accepted"),
                _answer(3, alert, "accepted", key="someone-else"),
                Record(NAMES.outcomes, 0, 4, b"x", b"{not json"),
            ]
        ),
    )
    reasons = [d["reason"] for d in sender.on(NAMES.dead_letters)]
    assert len(reasons) == 3
    assert "unknown alert" in reasons[0]
    assert "send it keyed by that customer" in reasons[1]
    assert "not JSON" in reasons[2]


def test_an_opening_of_the_offered_product_is_an_inferred_acceptance(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    customer = rows[1]["客户编号"]
    alert = _offer(processor, sender, customer, 10)
    opening = _tx(11, customer, product=alert["product"], kind="open", amount=1_000.0)
    _run(processor, processor.transactions([opening]))
    key = ArmKey("v1", alert["segment"], alert["product"])
    assert _book(table)[key] == Tally(accepted=1, sent=1)
    settled = decode_state(table[customer]).offers.settled[alert["alert_id"]]
    assert (settled.outcome, settled.by) == ("accepted", f"{NAMES.transactions}:0@11")


def test_a_declined_product_is_not_offered_again_within_the_cool_down(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    customer = rows[2]["客户编号"]
    alert = _offer(processor, sender, customer, 10)
    _run(processor, processor.outcomes([_answer(0, alert, "declined")]))
    state = decode_state(table[customer])
    assert alert["product"] in state.offers.declined
    # Another change of holdings two days later: any offer but the declined product.
    later = _tx(12, customer, product="国债", kind="open", ts="2026-11-26T10:00:00+08:00")
    _run(processor, processor.transactions([later]))
    again = [a for a in sender.on(NAMES.cross_sell_alerts) if a["customer_id"] == customer][1:]
    assert all(a["product"] != alert["product"] for a in again)


@pytest.mark.parametrize("lost", ["counts", "state"])
def test_counts_after_a_crash_equal_counts_without_one(
    active: ActiveView, rows: list[dict[str, Any]], lost: str
) -> None:
    """A batch's state and counts reach the changelog separately: a crash can keep either.
    Re-reading the batch from the commit counts every event once either way."""
    reference, ref_sender, ref_table = _processor(active)
    _run(reference, reference.snapshot_rows(_snapshot(rows)))
    customer = rows[3]["客户编号"]
    alert = _offer(reference, ref_sender, customer, 10)
    answer = _answer(0, alert, "accepted")
    _run(reference, reference.outcomes([answer]))

    processor, sender, table = _processor(active)
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    _offer(processor, sender, customer, 10)
    _run(processor, processor.outcomes([answer]))
    if lost == "counts":  # the state reached the changelog, the counts did not
        table[book_key(0)] = encode_book(PartitionBook())
    else:  # the counts did, the state did not: the customer as after the snapshot only
        table[customer] = _after_snapshot(active, rows)[customer]
    restarted, _, _ = _processor(active, table=table)
    _run(restarted, restarted.transactions([_tx(10, customer)]))
    _run(restarted, restarted.outcomes([answer]))
    assert _book(table) == _book(ref_table)
    assert decode_state(table[customer]).offers == decode_state(ref_table[customer]).offers


def _after_snapshot(active: ActiveView, rows: list[dict[str, Any]]) -> dict[str, bytes]:
    processor, _, table = _processor(active)
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    return table


def test_the_challenger_serves_its_share_and_its_alerts_say_so(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    challenger = ActiveView("v2", active.bundle, OfferIndex(active.bundle))
    processor, sender, _ = _processor(active, challenger=lambda: (challenger, 0.5))
    _run(processor, processor.snapshot_rows(_snapshot(rows)))
    for i, row in enumerate(rows):
        _run(processor, processor.transactions([_tx(20 + i, row["客户编号"])]))
    alerts = sender.on(NAMES.cross_sell_alerts)
    arms = {(a["arm"], a["bundle_version"]) for a in alerts}
    assert arms <= {("champion", "v1"), ("challenger", "v2")}
    assert len(arms) == 2, arms  # 5 customers, half each: both arms (fixed by the ids)


def test_an_opening_in_the_same_batch_as_its_offer_accepts_it_as_across_batches(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    """Offers are decided at the end of a batch; an opening later in the batch still finds
    the offer its earlier event sent, as when every event is its own batch."""
    customer = rows[4]["客户编号"]
    alone, alone_sender, alone_table = _processor(active)
    _run(alone, alone.snapshot_rows(_snapshot(rows)))
    alert = _offer(alone, alone_sender, customer, 10)
    opening = _tx(11, customer, product=alert["product"], kind="open", amount=1_000.0)
    _run(alone, alone.transactions([opening]))

    together, sender, table = _processor(active)
    _run(together, together.snapshot_rows(_snapshot(rows)))
    _run(together, together.transactions([_tx(10, customer), opening]))
    assert sender.on(NAMES.cross_sell_alerts)[0] == alert
    assert decode_state(table[customer]).offers == decode_state(alone_table[customer]).offers
    assert _book(table) == _book(alone_table)
    assert sum(t.accepted for t in _book(table).values()) == 1
