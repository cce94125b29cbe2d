"""The stream worker's wiring: Faust app, topics, holdings table, agents, web server.

The agents (profiles, snapshot rows, outcomes) and the transactions task (fed by the batch intake,
below Faust's per-event stream) are linear: take records, hand them to the `Processor`
(streams/processing/processor.py, where the per-batch logic lives and is tested
in-process), which sends through the `Outflow` and writes changed states and acceptance counts
before each commit (the flush barrier).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust

from rules_store.bundle.model import Bundle
from rules_store.domain.acceptance import AdaptivePolicy, ArmKey, Tally
from rules_store.domain.alerts import ActiveView
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.offers import OfferIndex
from rules_store.domain.outcomes import OutcomePolicy
from rules_store.settings import Endpoints, Settings
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.store.redis_store import Challenge
from rules_store.views.metrics import EngineMetrics
from streams.compat.batch_intake import BatchIntake
from streams.compat.changelog_batches import ChangelogBatches
from streams.compat.faust_fixes import flush_waits_for, install_faust_fixes
from streams.compat.rocks_store import HoldingsTable
from streams.compat.tansu import (
    EMBEDDED_FETCH_WAIT_MS,
    FENCE_CUSTOMER,
    install_changelog_fence,
    install_fetch_wait,
)
from streams.kafka.app import create_app, declare_topic
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Record
from streams.processing.outflow import Outflow
from streams.processing.processor import Policies, Processor
from streams.stall_watch import StallWatch
from streams.web.wiring import register_web

log = logging.getLogger(__name__)
COUNTS_MIRROR_S = 5.0  # how often a worker writes its acceptance counts to Redis
OUTCOMES_WITHIN_S = 0.005  # how long the outcomes agent waits to fill a batch

# Per partition's database. Faust's defaults (a 2 GiB block cache, three 64 MiB write
# buffers) would let a worker's resident memory grow with the table it reads; states are
# read once per batch and kept decoded (XSELL_STATE_CACHE_SIZE), so a small cache does.
ROCKSDB_OPTIONS = {
    "block_cache_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}


class ActiveBundle:
    """The bundle in use and its offer index, swapped as one when a new version arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: ActiveView | None = None
        self._challenger: tuple[ActiveView, float] | None = None

    def update(self, version: str, bundle: Bundle) -> None:
        index = OfferIndex(bundle)  # built before the swap: events never wait for it
        with self._lock:
            self._current = ActiveView(version, bundle, index)
        log.info("serving bundle version=%s", version)

    def get(self) -> ActiveView | None:
        with self._lock:
            return self._current

    def update_challenger(self, taken: tuple[Challenge, Bundle] | None) -> None:
        """Serve a challenger beside the active bundle (None: no challenger)."""
        view = None
        if taken is not None:
            challenge, bundle = taken
            current = self.challenger()
            index = (
                current[0].offers
                if current is not None and current[0].version == challenge.version
                else OfferIndex(bundle)
            )
            view = (ActiveView(challenge.version, bundle, index), challenge.share)
        with self._lock:
            self._challenger = view
        log.info("challenger version=%s", view[0].version if view else None)

    def challenger(self) -> tuple[ActiveView, float] | None:
        with self._lock:
            return self._challenger


def _record(event: faust.EventT[bytes]) -> Record:
    m = event.message
    return Record(m.topic, m.partition, m.offset, event.key, event.value, m.timestamp)


def _records(chunk: Sequence[Any]) -> list[Record]:
    """aiokafka's records (from the batch intake) as the processor's."""
    return [
        Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000) for r in chunk
    ]


async def _singles(stream: faust.StreamT[bytes]) -> AsyncIterator[list[faust.EventT[bytes]]]:
    async for event in stream.events():
        yield [event]


def build_worker(
    settings: Settings,
    endpoints: Endpoints,
    active: ActiveBundle,
    *,
    app_id: str | None = None,
    store_problem: Callable[[], str | None] = lambda: None,
    acceptance: Callable[[], dict[str, Any]] = lambda: {"arms": []},
    counts: AcceptanceStore | None = None,
    day_counts: Callable[[str, str], Mapping[ArmKey, Tally]] | None = None,
) -> faust.App:
    """The worker's Faust app. `store_problem` says why the bundle store cannot be read
    right now (None when it can), for /health; `acceptance` reads the acceptance per arm
    (GET /acceptance). `counts` receives this worker's acceptance counts (none without it)
    and `day_counts` gives the counts offers rank with."""
    names = TopicNames(settings.topic_prefix)
    metrics = EngineMetrics()
    install_faust_fixes()
    if endpoints.embedded_broker:
        install_changelog_fence()
    if settings.fetch_max_wait_ms is not None or endpoints.embedded_broker:
        install_fetch_wait(settings.fetch_max_wait_ms or EMBEDDED_FETCH_WAIT_MS)
    app = create_app(settings, endpoints, app_id=app_id or names.engine_group, Table=HoldingsTable)
    outputs = (names.dead_letters, names.cross_sell_alerts, names.churn_alerts)
    topics = {name: declare_topic(app, name, settings) for name in outputs}
    transactions = declare_topic(app, names.transactions, settings)
    snapshots = declare_topic(app, names.holdings_snapshot, settings)
    profiles = declare_topic(app, names.profiles, settings)
    outcomes = declare_topic(app, names.outcomes, settings)
    holdings = app.Table(
        "holdings",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
        options=ROCKSDB_OPTIONS,
    )
    processor = Processor(
        holdings.data,
        Outflow(topics, lambda: ChangelogBatches(holdings)),
        names=names,
        active=active.get,
        policies=Policies(
            contact=ContactPolicy(settings.cooldown_days, settings.max_alerts_per_day),
            churn=ChurnPolicy(settings.churn_threshold, settings.churn_grace_days),
            max_future_days=settings.max_future_days,
            outcomes=OutcomePolicy(settings.attribution_days, settings.decline_cooldown_days),
            adaptive=AdaptivePolicy(
                settings.adaptive,
                settings.thompson,
                settings.prior_strength,
                settings.prior_acceptance,
            ),
        ),
        metrics=metrics,
        ignore_keys=(FENCE_CUSTOMER,),
        day_counts=day_counts or (lambda _version, _day: {}),
        challenger=active.challenger,
        state_cache_size=settings.state_cache_size,
    )
    flush_waits_for(app.producer.buffer, processor.flush)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    def _on_assigned(_sender: object, *_args: object, **_kwargs: object) -> None:
        processor.reassigned()

    async def run(
        topic: str,
        batches: AsyncIterator[list[faust.EventT[bytes]]],
        handle: Callable[[list[Record]], Awaitable[None]],
    ) -> AsyncIterator[None]:
        try:
            async for events in batches:
                await handle([_record(e) for e in events])
                yield None
        finally:
            processor.progress[topic].running = False  # only at shutdown: handle never raises

    # Transactions below Faust's per-event stream: subscribed through Faust, fetched
    # chunks taken whole by the intake (streams/compat/batch_intake.py), one task.
    intake = BatchIntake(app, names.transactions, max_records=settings.batch_size)
    app.topics.add(transactions)

    @app.task
    async def process_transactions() -> None:
        try:
            async for chunks in intake.batches():
                await processor.transactions([r for c in chunks for r in _records(c.records)])
                intake.done(chunks)
        finally:
            processor.progress[names.transactions].running = False  # only at shutdown

    # Outcomes stay on Faust's stream: answers to offers come at a small fraction of the
    # transactions' rate, and the intake serves one topic per app.
    @app.agent(outcomes)
    async def process_outcomes(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        batches = stream.take_events(settings.batch_size, within=OUTCOMES_WITHIN_S)  # type: ignore[attr-defined]
        async for done in run(names.outcomes, batches, processor.outcomes):
            yield done

    if counts is not None:

        @app.timer(COUNTS_MIRROR_S)
        async def mirror_counts() -> None:
            """This worker's partitions' acceptance counts to Redis, for the other workers,
            `xsell bundles report` and the dashboard (absolute values: a repeat is harmless)."""
            assigned = {
                tp.partition
                for tp in app.assignor.assigned_actives()
                if tp.topic == names.transactions
            }
            for partition, book in processor.books().items():
                if partition in assigned and book.book:
                    try:
                        await asyncio.to_thread(counts.write, partition, book.book)
                    except Exception as exc:  # Redis down: the next round writes them
                        log.warning(
                            "acceptance counts not mirrored partition=%s: %s", partition, exc
                        )

    @app.agent(profiles)
    async def process_profiles(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in run(names.profiles, _singles(stream), processor.profiles):
            yield done

    @app.agent(snapshots)
    async def load_snapshot_rows(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in run(names.holdings_snapshot, _singles(stream), processor.snapshot_rows):
            yield done

    watch = StallWatch(app, processor.progress, metrics, stall_s=settings.stall_seconds)

    @app.timer(watch.interval_s)
    async def watch_stalls() -> None:
        await watch.check()

    register_web(
        app,
        holdings=holdings,
        state_of=processor.states.get,
        active=active,
        settings=settings,
        endpoints=endpoints,
        metrics=metrics,
        progress=processor.progress,
        stalls=watch.current,
        store_problem=store_problem,
        acceptance=acceptance,
    )
    return app
