"""The rules store against a real Redis: versions, activation, watching, failures."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from rules_store.bundle.codec import BundleFormatError
from rules_store.bundle.diff import diff_bundles
from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from rules_store.store.redis_store import (
    BundleIntegrityError,
    BundleNotFoundError,
    BundleStore,
    BundleWatcher,
    encode_bundle,
    open_redis,
)
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail
from xsell.embedded import EmbeddedStack, redis_server_argv
from xsell.processes import ChildProcess, free_port


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    path = tmp_path_factory.mktemp("bundles") / "c.del"
    write_retail(generate_retail(3_000, seed=4), path, "del")
    return [
        train_retail(path, RETAIL_SCHEMA, TrainParams(segments=k, min_support=support)).bundle
        for k, support in ((2, 0.05), (3, 0.05), (3, 0.02), (4, 0.03))
    ]


@pytest.fixture
def store(stack: EmbeddedStack, request: pytest.FixtureRequest) -> Iterator[BundleStore]:
    """A store under its own key prefix in the session's Redis."""
    client = open_redis(stack.settings, stack.endpoints)
    yield BundleStore(client, f"test-{request.node.name}")
    client.close()


def _wait_for(condition: Any, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_publish_activate_reload_and_rollback_as_a_subscriber_sees_them(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    first, second = store.publish(bundles[0]), store.publish(bundles[1])
    assert store.publish(bundles[0]) == first  # same content, same immutable version
    seen: list[str] = []
    # A 60 s poll: within the 5 s waits below only the pub/sub announcement can deliver.
    watcher = BundleWatcher(store, poll_s=60, on_change=lambda v, _b: seen.append(v))
    watcher.start()
    try:
        assert watcher.current() == (None, None)  # nothing active yet
        store.activate(first)
        assert _wait_for(lambda: watcher.current()[0] == first)
        store.activate(second)
        assert _wait_for(lambda: watcher.current()[0] == second)
        assert watcher.current()[1] == bundles[1]
        assert store.rollback() == first
        assert _wait_for(lambda: watcher.current()[0] == first)
        # The listener runs right after the new version becomes current: wait for it too.
        assert _wait_for(lambda: seen == [first, second, first]), seen
    finally:
        watcher.stop()
    with pytest.raises(BundleNotFoundError, match="nothing to roll back"):
        store.rollback()


def test_a_watcher_that_missed_the_announcement_catches_up_at_its_next_check(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    version = store.publish(bundles[0])
    # Change the pointer without the Lua script, so no announcement is published.
    store.client.set(store.keys.active, version)
    watcher = BundleWatcher(store, poll_s=0.3)
    watcher.start()
    try:
        other = store.publish(bundles[1])
        store.client.set(store.keys.active, other)
        assert _wait_for(lambda: watcher.current()[0] == other, within_s=3)
    finally:
        watcher.stop()


def test_concurrent_publishers_and_activators_do_not_corrupt_each_other(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    errors: list[BaseException] = []

    def publisher(bundle: Bundle) -> None:
        try:
            for _ in range(10):
                store.activate(store.publish(bundle))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(b,)) for b in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = {info.version for info in store.versions()}
    assert versions == {encode_bundle(b)[2] for b in bundles}
    for version in versions:
        assert store.load(version)[1] in bundles  # every copy intact, hash verified
    active = store.active_version()
    assert active in versions
    history = [v.decode() for v in store.client.lrange(store.keys.history, 0, -1)]
    assert set(history) <= versions
    assert all(a != b for a, b in zip([active, *history], history, strict=False))


def test_a_pickle_payload_in_redis_is_refused_and_never_executed(
    store: BundleStore, tmp_path: Path
) -> None:
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (tmp_path / "executed",))

    payload = pickle.dumps(Boom())
    store.client.set(store.keys.bundle("evil"), payload)
    store.client.hset(
        store.keys.meta("evil"), mapping={"sha256": hashlib.sha256(payload).hexdigest()}
    )
    with pytest.raises(BundleFormatError, match="not JSON"):
        store.load("evil")
    assert not (tmp_path / "executed").exists()


def test_a_corrupt_or_truncated_bundle_is_refused_and_the_previous_stays_in_use(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    good, bad, later = (store.publish(b) for b in bundles[:3])
    store.activate(good)
    refused: list[str] = []
    watcher = BundleWatcher(store, poll_s=0.2, on_change=lambda v, _b: refused.append(v))
    watcher.start()
    try:
        assert _wait_for(lambda: watcher.current()[0] == good)
        stored = store.client.get(store.keys.bundle(bad))
        assert isinstance(stored, bytes)
        store.client.set(store.keys.bundle(bad), stored[: len(stored) // 2])  # truncated
        with pytest.raises(BundleIntegrityError, match="SHA-256"):
            store.activate(bad)
        assert store.active_version() == good
        # Even if the pointer is forced onto it (no script, no announcement), the watcher
        # refuses it at its next check and keeps serving the good bundle...
        store.client.set(store.keys.active, bad)
        assert _wait_for(lambda: bad in watcher.refused)
        assert watcher.current() == (good, bundles[0])
        # ...and is still alive to take the next good version.
        store.activate(later)
        assert _wait_for(lambda: watcher.current()[0] == later)
    finally:
        watcher.stop()


def test_a_watcher_refuses_a_well_hashed_bundle_of_the_wrong_shape_and_lives_on(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    good = store.publish(bundles[0])
    store.activate(good)
    doc = json.loads(store.client.get(store.keys.bundle(good)))  # type: ignore[arg-type]
    doc["segments"][0]["popularity"][0] = 5  # not an [item, rate] pair
    payload = json.dumps(doc).encode()
    store.client.set(store.keys.bundle("odd"), payload)
    store.client.hset(
        store.keys.meta("odd"), mapping={"sha256": hashlib.sha256(payload).hexdigest()}
    )
    watcher = BundleWatcher(store, poll_s=0.2)
    watcher.start()
    try:
        assert _wait_for(lambda: watcher.current()[0] == good)
        store.client.set(store.keys.active, "odd")
        assert _wait_for(lambda: "odd" in watcher.refused)
        assert watcher.current()[0] == good
        other = store.publish(bundles[1])
        store.activate(other)
        assert _wait_for(lambda: watcher.current()[0] == other)
    finally:
        watcher.stop()


def test_a_document_with_a_wrong_type_is_refused_even_with_a_matching_hash(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    version = store.publish(bundles[0])
    doc = json.loads(store.client.get(store.keys.bundle(version)))  # type: ignore[arg-type]
    doc["segments"][0]["rules"][0][5] = {"__class__": "os.system"}
    payload = json.dumps(doc).encode()
    store.client.set(store.keys.bundle("odd"), payload)
    store.client.hset(
        store.keys.meta("odd"), mapping={"sha256": hashlib.sha256(payload).hexdigest()}
    )
    with pytest.raises(BundleFormatError, match="confidence should be int or float"):
        store.load("odd")


def test_old_versions_are_deleted_but_never_the_active_one(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    versions = []
    for bundle in bundles:
        versions.append(store.publish(bundle))
        time.sleep(0.01)  # distinct publish times
    store.activate(versions[0])  # the oldest
    deleted = store.delete_old(keep=2)
    assert set(deleted) == {versions[1]}
    assert {v.version for v in store.versions()} == {versions[0], versions[2], versions[3]}
    with pytest.raises(BundleNotFoundError):
        store.load(versions[1])


def test_diff_reports_rules_added_removed_and_changed_by_segment(bundles: list[Bundle]) -> None:
    looser, stricter = bundles[2], bundles[1]  # same k=3, min support 0.02 vs 0.05
    diffs = diff_bundles(stricter, looser)
    assert sum(len(d.added) for d in diffs) == sum(len(s.rules) for s in looser.segments) - sum(
        len(s.rules) for s in stricter.segments
    )
    assert all(not d.removed and not d.changed for d in diffs)
    assert all(d.empty for d in diff_bundles(looser, looser))
    changed = replace(
        looser,
        segments=(
            replace(
                looser.segments[0],
                rules=tuple(
                    replace(r, confidence=r.confidence / 2) for r in looser.segments[0].rules
                ),
            ),
            *looser.segments[1:],
        ),
    )
    assert len(diff_bundles(looser, changed)[0].changed) == len(looser.segments[0].rules)


def test_publish_with_redis_down_fails_clearly_and_writes_nothing(bundles: list[Bundle]) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    endpoints = Endpoints(
        "unused:1", settings.redis_url or "", embedded_broker=False, embedded_redis=False
    )
    store = BundleStore(open_redis(settings, endpoints, timeout_s=1), "down")
    with pytest.raises(ServiceUnavailableError, match="Redis is unreachable, cannot publish"):
        store.publish(bundles[0])


def test_a_reader_survives_a_redis_restart_and_sees_later_activations(
    tmp_path: Path, bundles: list[Bundle]
) -> None:
    port = free_port()
    argv = redis_server_argv(port, tmp_path)
    server = ChildProcess("redis", argv, tmp_path / "redis.log")
    server.start()
    endpoints = Endpoints(
        "unused:1", f"redis://127.0.0.1:{port}/0", embedded_broker=False, embedded_redis=True
    )
    client = open_redis(Settings(), endpoints, timeout_s=1)
    assert _wait_for(lambda: _pings(client))
    store = BundleStore(client, "restart")
    store.activate(store.publish(bundles[0]))
    watcher = BundleWatcher(store, poll_s=0.3)
    watcher.start()
    try:
        assert _wait_for(lambda: watcher.current()[1] == bundles[0])
        server.stop()
        time.sleep(1.0)
        assert watcher.current()[1] == bundles[0]  # still serving the cached bundle
        server = ChildProcess("redis", argv, tmp_path / "redis2.log")
        server.start()  # same port and directory: bundles[0] comes back from the AOF
        assert _wait_for(lambda: _pings(client))
        store.activate(store.publish(bundles[1]))
        assert _wait_for(lambda: watcher.current()[1] == bundles[1], within_s=10)
    finally:
        watcher.stop()
        server.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_bundle_with_a_nan_lift_is_never_published_and_a_planted_one_is_refused(
    store: BundleStore, bundles: list[Bundle]
) -> None:
    bundle = bundles[0]
    first = bundle.segments[0]
    nan_lift = replace(
        bundle,
        segments=(
            replace(first, rules=(replace(first.rules[0], lift=float("nan")), *first.rules[1:])),
            *bundle.segments[1:],
        ),
    )
    with pytest.raises(BundleFormatError, match=r"rules\[0\]\.lift: expected a finite number"):
        store.publish(nan_lift)
    assert store.client.keys(f"{store.keys.prefix}*") == []

    good = store.publish(bundle)
    store.activate(good)
    doc = json.loads(store.client.get(store.keys.bundle(good)))  # type: ignore[arg-type]
    doc["segments"][0]["rules"][1][5] = float("inf")  # confidence; json writes `Infinity`
    payload = json.dumps(doc).encode()
    assert b"Infinity" in payload
    store.client.set(store.keys.bundle("inf"), payload)
    store.client.hset(
        store.keys.meta("inf"), mapping={"sha256": hashlib.sha256(payload).hexdigest()}
    )
    with pytest.raises(BundleFormatError, match=r"rules\[1\]\.confidence: .* got inf"):
        store.load("inf")
    with pytest.raises(BundleFormatError):
        store.activate("inf")
    assert store.active_version() == good
