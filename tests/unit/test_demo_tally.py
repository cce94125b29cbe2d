"""The demo's tally and the terminal's alert lines: pure, no broker."""

from __future__ import annotations

import pytest

from xsell.alert_lines import describe
from xsell.demo_tally import Tally


def test_tally_counts_by_type_and_measures_latency_from_each_events_send_time() -> None:
    tally = Tally({"e1": 100.0, "e2": 100.5})
    tally.add("cross_sell", {"type": "cross_sell", "event_id": "e1"}, 100_050)
    tally.add("cross_sell", {"type": "cross_sell", "event_id": "e2"}, 100_650)
    tally.add("churn", {"type": "churn", "event_id": "unknown"}, 100_700)
    tally.add("dead_letters", {"reason": "not JSON"}, 100_800)
    assert tally.alerts == {"cross_sell": 2, "churn": 1}
    assert tally.dead_letters == 1
    assert tally.latencies_ms == pytest.approx([50.0, 150.0])
    assert tally.latency_ms(50) == pytest.approx(100.0)
    assert [kind for kind, _, _ in tally.recent] == [
        "cross_sell",
        "cross_sell",
        "churn",
        "dead_letters",
    ]
    assert Tally({}).latency_ms(99) is None


def test_lines_name_the_offer_and_its_reason_or_the_dead_letters_source() -> None:
    fallback = describe(
        "cross_sell",
        {
            "ts": "2026-11-02T09:30:00+08:00",
            "customer_id": "c1",
            "product": "理财",
            "segment": 0,
            "alert_id": "0123456789",
            "evidence": {"fallback": True},
        },
    )
    assert (
        fallback
        == "2026-11-02 09:30  -  c1  cross-sell 理财 (segment 0; most held in the segment)  [01234567]"
    )
    dead = describe(
        "dead_letters",
        {
            "reason": "missing field 'ts'",
            "dead_at": "2026-11-23T10:00:00.123+00:00",
            "source": {"topic": "x.transactions", "partition": 2, "offset": 41},
        },
    )
    assert dead == "2026-11-23T10:00:00  dead letter from x.transactions[2]@41: missing field 'ts'"
