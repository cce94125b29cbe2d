"""Champion and challenger in a real Redis: the pointer, the watcher, counts and the report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.acceptance import ArmKey, Tally
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.store.redis_store import (
    BundleNotFoundError,
    BundleStore,
    BundleWatcher,
    VersionConflictError,
    open_redis,
)
from tests.cli import run_cli
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    path = tmp_path_factory.mktemp("bundles") / "c.del"
    write_retail(generate_retail(2_000, seed=5), path, "del")
    return [
        train_retail(path, RETAIL_SCHEMA, TrainParams(segments=k, min_support=0.05)).bundle
        for k in (2, 3, 4)
    ]


@pytest.fixture
def store(stack: EmbeddedStack, isolated: str) -> Iterator[BundleStore]:
    """The store the CLI sees: the session's Redis under this test's own prefix."""
    client = open_redis(stack.settings, stack.endpoints)
    yield BundleStore(client, isolated)
    client.close()


def test_a_challenger_is_served_beside_the_champion_then_promoted(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    champion, challenger, third = (store.publish(b) for b in bundles)
    store.activate(champion)
    with pytest.raises(VersionConflictError, match="is the active bundle"):
        store.challenge(champion, 0.2)
    with pytest.raises(BundleNotFoundError):
        store.challenge("v-none", 0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        store.challenge(challenger, 1.0)

    watcher = BundleWatcher(store, poll_s=60)
    watcher.start()
    try:
        assert watcher.challenge() is None
        store.challenge(challenger, 0.25)
        assert _wait_for(lambda: watcher.challenge() is not None)  # announced, not polled
        taken = watcher.challenge()
        assert taken is not None
        assert taken[0] == (challenger, 0.25)
        assert len(taken[1].segments) == 3
        # Neither arm's bundle can be deleted while it serves.
        assert store.delete([champion, challenger, third]) == [third]

        assert store.promote() == (challenger, champion)
        assert store.challenger() is None
        assert _wait_for(lambda: watcher.current()[0] == challenger and watcher.challenge() is None)
        assert store.rollback() == champion
        with pytest.raises(BundleNotFoundError, match="no challenger to promote"):
            store.promote()
        store.challenge(challenger, 0.1)
        assert store.end_challenge() == challenger
        assert _wait_for(lambda: watcher.challenge() is None)
    finally:
        watcher.stop()


def test_counts_from_partitions_add_up_and_the_report_compares_the_arms(
    store: BundleStore, bundles: list[Bundle], capsys: pytest.CaptureFixture[str]
) -> None:
    champion, challenger = store.publish(bundles[0]), store.publish(bundles[1])
    store.activate(champion)
    store.challenge(challenger, 0.2)
    counts = AcceptanceStore(store.client, store.keys.prefix.strip("{}").removesuffix(":rules"))
    counts.write(0, {ArmKey(champion, 0, "国债"): Tally(20, 50, 30, sent=110)})
    counts.write(1, {ArmKey(champion, 1, "理财"): Tally(10, 40, 50, sent=100)})
    counts.write(0, {ArmKey(challenger, 0, "国债"): Tally(18, 12, 10, sent=40)})
    # A worker writing its partition again (after a restart) replaces, never adds.
    counts.write(1, {ArmKey(champion, 1, "理财"): Tally(10, 40, 50, sent=100)})
    store.client.hset(store.keys.acceptance(champion), "garbage", "x")

    book = counts.read(champion)
    assert sum(book.values(), Tally()) == Tally(30, 90, 80, 210)

    code, text = run_cli(["bundles", "report", "--products"], capsys)
    assert code == 0, text
    tables = text.split(" of customers)")
    assert f"champion {champion} (80%" in tables[0]
    assert f"challenger {challenger} (20%" in tables[1]
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.count("│") > 5
    ]
    assert rows == [
        ["all", "210", "10", "30 / 90 / 80", "15.0%", "10.7%–20.6%", ""],
        ["国债", "110", "10", "20 / 50 / 30", "20.0%", "13.3%–28.9%", ""],
        ["理财", "100", "0", "10 / 40 / 50", "10.0%", "5.5%–17.4%", ""],
        ["all", "40", "0", "18 / 12 / 10", "45.0%", "30.7%–60.2%", "+200.0%"],
        ["国债", "40", "0", "18 / 12 / 10", "45.0%", "30.7%–60.2%", ""],
    ]


def _wait_for(condition: object, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(condition())  # type: ignore[operator]


def test_the_report_without_an_active_bundle_says_what_to_do(
    store: BundleStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, text = run_cli(["bundles", "report"], capsys)
    assert code != 0
    assert "no bundle is active yet" in text


def test_a_day_s_snapshot_is_taken_once_and_then_fixed(store: BundleStore) -> None:
    counts = AcceptanceStore(store.client, store.keys.prefix.strip("{}").removesuffix(":rules"))
    key = ArmKey("v1", 2, "国债")
    counts.write(0, {key: Tally(3, 4, 1, sent=9)})
    first = counts.day_snapshot("v1", "2026-11-30")
    assert first == {key: Tally(3, 4, 1, sent=9)}
    counts.write(0, {key: Tally(30, 4, 1, sent=40)})  # later outcomes
    assert counts.day_snapshot("v1", "2026-11-30") == first  # the day ranks as it began
    assert counts.day_snapshot("v1", "2026-12-01") == {key: Tally(30, 4, 1, sent=40)}
    assert store.client.ttl(store.keys.acceptance_day("v1", "2026-11-30")) > 30 * 24 * 3600
