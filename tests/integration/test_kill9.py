"""kill -9 workers mid-stream, again and again: holdings and alerts end as with no crash.

One worker is killed three times; or two run and the kills alternate between them, so
each crash is a rebalance in which the survivor takes over and recovers the table. The
scenario and its no-crash reference are in kill9_scenario.py; bench/kill9.py loops it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rules_store.domain.ranking import RankerName
from tests.integration.kill9_scenario import run_kill9
from xsell.embedded import EmbeddedStack


@pytest.mark.parametrize(
    ("workers", "ranker"),
    [(1, None), (2, "blend")],
    ids=["one worker, rules", "two workers, blend ranker"],
)
def test_kill_9_mid_stream_leaves_the_holdings_and_alerts_of_a_run_without_crashes(
    workers: int, ranker: RankerName | None, stack: EmbeddedStack, tmp_path: Path
) -> None:
    print(f"workers' logs: {tmp_path}")  # shown with a failure
    result = run_kill9(stack, workers=workers, ranker=ranker, seed=5, log_dir=tmp_path)
    print(f"{result.seconds:.0f} s; kills: {result.kills}")

    # The kills hit mid-stream: work was left at the first (offsets committed so far).
    assert result.kills[0].mid_stream, result.kills
    if result.differ:
        pytest.fail(result.customers_failure())
    assert result.books == {}  # counted once each: partition -> (stored, want)
    assert result.settled  # openings settled offers
    # Otherwise the test would prove nothing about them.
    assert result.kinds == {"cross_sell", "churn", "retention"}, result.kinds
    if ranker is not None:  # the offers are the ranker's, with its evidence
        assert result.rankers == {ranker}
    assert result.missing_alerts == []  # every expected alert
    assert result.extra_alerts == []  # nothing else
    assert result.changed_alerts == {}  # repeats are the same alert, byte for byte
