"""The offers ledger: explicit answers, inferred conversions, expiry, cool-down, no double count."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_store.domain.acceptance import OUTCOMES, ArmKey, PartitionBook, Tally
from rules_store.domain.events import InvalidEventError
from rules_store.domain.holdings import CustomerState
from rules_store.domain.outcomes import (
    OfferLedger,
    OutcomePolicy,
    OutcomeReport,
    SentOffer,
    SettledOffer,
    UnknownAlertError,
    attribute_opening,
    cooling_down,
    customer_of_alert,
    expire_offers,
    parse_outcome,
    record_offer,
    settle_outcome,
)
from rules_store.domain.state_codec import decode_state, encode_state

POLICY = OutcomePolicy(attribution_days=30, decline_cooldown_days=90)
ALERT = "C001:" + "ab" * 16
OTHER = "C001:" + "cd" * 16


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+08:00")


def sent(product: str = "国债", day: str = "2026-11-01", by: str = "tx:0@7") -> SentOffer:
    return SentOffer(product, at(day).isoformat(), "v1", 3, "champion", by)


def report(outcome: str, alert: str = ALERT, day: str = "2026-11-02") -> OutcomeReport:
    return parse_outcome({"alert_id": alert, "outcome": outcome, "ts": at(day).isoformat()})


def test_an_answer_settles_its_alert_once() -> None:
    ledger = record_offer(OfferLedger(), ALERT, sent())
    ledger, settlement = settle_outcome(ledger, report("accepted"), by="out:0@1")
    assert settlement is not None
    assert settlement.outcome == "accepted"
    assert not settlement.inferred
    assert settlement.offer.key == ("v1", 3, "国债")
    # The same outcome replayed, or another answer for the same alert: nothing more to count.
    assert settle_outcome(ledger, report("accepted"), by="out:0@1") == (ledger, None)
    assert settle_outcome(ledger, report("declined"), by="out:0@2") == (ledger, None)
    # A re-sent alert (the worker re-processed its event) does not reopen it.
    assert record_offer(ledger, ALERT, sent()) is ledger


def test_an_opening_within_the_window_is_an_acceptance_and_an_answer_after_it_counts_nothing() -> (
    None
):
    ledger = record_offer(OfferLedger(), ALERT, sent())
    ledger = record_offer(ledger, OTHER, sent("理财"))
    ledger, settled = attribute_opening(ledger, "国债", at("2026-11-20"), POLICY, by="tx:0@9")
    assert [(s.alert_id, s.outcome, s.inferred) for s in settled] == [(ALERT, "accepted", True)]
    assert list(ledger.pending) == [OTHER]
    assert settle_outcome(ledger, report("accepted"), by="out:0@1")[1] is None


def test_an_opening_outside_the_window_or_before_the_offer_is_not_attributed() -> None:
    ledger = record_offer(OfferLedger(), ALERT, sent(day="2026-11-01"))
    assert attribute_opening(ledger, "国债", at("2026-12-02"), POLICY, by="tx:0@9")[1] == []
    assert attribute_opening(ledger, "国债", at("2026-10-31"), POLICY, by="tx:0@9")[1] == []


def test_an_offer_past_the_window_is_ignored_and_its_id_forgotten_later() -> None:
    ledger = record_offer(OfferLedger(), ALERT, sent(day="2026-11-01"))
    same, none = expire_offers(ledger, at("2026-11-30"), POLICY, by="tx:0@11")
    assert none == []
    assert same is ledger
    ledger, settled = expire_offers(ledger, at("2026-12-02"), POLICY, by="tx:0@11")
    assert [(s.outcome, s.inferred) for s in settled] == [("ignored", True)]
    assert ALERT in ledger.settled
    ledger, _ = expire_offers(ledger, at("2027-01-05"), POLICY, by="tx:0@11")
    assert ledger.settled == {}
    with pytest.raises(UnknownAlertError, match="not an offer sent to them within"):
        settle_outcome(ledger, report("accepted", day="2027-01-05"), by="out:0@3")


def test_a_decline_cools_the_product_down_for_the_customer() -> None:
    ledger = record_offer(OfferLedger(), ALERT, sent())
    ledger, _ = settle_outcome(ledger, report("declined", day="2026-11-03"), by="out:0@4")
    assert cooling_down(ledger, "国债", at("2027-01-31"), POLICY)
    assert not cooling_down(ledger, "国债", at("2027-02-01"), POLICY)
    assert not cooling_down(ledger, "理财", at("2026-11-04"), POLICY)
    ledger, _ = expire_offers(ledger, at("2027-02-01"), POLICY, by="tx:0@11")
    assert ledger.declined == {"国债": at("2026-11-03").isoformat()}  # kept: one per product


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"outcome": "accepted", "ts": "2026-11-02T10:00:00+08:00"}, "missing field 'alert_id'"),
        ({"alert_id": "abc", "outcome": "accepted"}, "is not an offer's alert id"),
        ({"alert_id": "C1:" + "z" * 32, "outcome": "accepted"}, "is not hexadecimal"),
        (
            {"alert_id": ALERT, "outcome": "yes", "ts": "2026-11-02T10:00:00+08:00"},
            "unknown outcome 'yes'",
        ),
        ({"alert_id": ALERT, "outcome": "ignored"}, "missing field 'ts'"),
        (
            {"alert_id": ALERT, "outcome": "ignored", "ts": "2026-11-02T10:00:00"},
            "has no UTC offset",
        ),
        (
            {
                "alert_id": ALERT,
                "outcome": "ignored",
                "ts": "2026-11-02T10:00:00+08:00",
                "channel": 7,
            },
            "field 'channel'",
        ),
    ],
)
def test_a_bad_outcome_says_what_is_wrong(record: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        parse_outcome(record)


def test_the_alert_id_names_its_customer_even_with_colons_in_the_id() -> None:
    assert customer_of_alert("branch:7:C9:" + "0" * 32) == "branch:7:C9"


def test_the_ledger_tells_what_an_event_caused_and_the_book_counts_an_event_once() -> None:
    ledger = record_offer(OfferLedger(), ALERT, sent(by="tx:0@7"))
    ledger = record_offer(ledger, OTHER, sent("理财", by="tx:0@7"))
    ledger, _ = settle_outcome(ledger, report("declined"), by="out:0@2")
    assert ledger.caused_by("tx:0@7") == ([("v1", 3, "理财"), ("v1", 3, "国债")], [])
    assert ledger.caused_by("out:0@2") == ([], [(("v1", 3, "国债"), "declined")])

    book = PartitionBook().count("tx:0", 7, *ledger.caused_by("tx:0@7"))
    assert book is not None
    assert book.count("tx:0", 7, [ArmKey("v1", 3, "国债")], []) is None  # counted already
    assert book.count("tx:0", 6, [ArmKey("v1", 3, "国债")], []) is None
    book = book.count("out:0", 2, *ledger.caused_by("out:0@2"))
    assert book is not None
    assert book.book == {
        ArmKey("v1", 3, "国债"): Tally(declined=1, sent=1),
        ArmKey("v1", 3, "理财"): Tally(sent=1),
    }
    assert book.positions == {"tx:0": 7, "out:0": 2}


_offers = st.builds(
    SentOffer,
    st.sampled_from(["国债", "理财", "p:7"]),
    st.just("2026-11-01T10:00:00+08:00"),
    st.text(min_size=1, max_size=8),
    st.integers(0, 9),
    st.sampled_from(["champion", "challenger"]),
    st.text(max_size=12),
)


@given(
    st.dictionaries(st.text(max_size=40), _offers, max_size=4),
    st.dictionaries(
        st.text(max_size=40),
        st.builds(SettledOffer, _offers, st.sampled_from(OUTCOMES), st.text(max_size=12)),
        max_size=4,
    ),
    st.dictionaries(st.text(max_size=5), st.just("2026-11-02T10:00:00+08:00"), max_size=3),
)
def test_a_customer_s_offers_ledger_round_trips_through_the_state_codec(
    pending: dict[str, SentOffer], settled: dict[str, SettledOffer], declined: dict[str, str]
) -> None:
    state = CustomerState("c1", offers=OfferLedger(pending, settled, declined))
    assert decode_state(encode_state(state)) == state


def test_a_format_1_state_reads_with_no_offers_and_a_customer_without_offers_stays_small() -> None:
    old = {"format": 1, "customer_id": "c1", "balances": {"国债": 5.0}}
    assert decode_state(json.dumps(old).encode()).offers == OfferLedger()
    assert b"offers" not in encode_state(CustomerState("c1"))
