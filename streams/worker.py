"""The stream worker: transactions, profiles and snapshot rows -> holdings table -> alerts.

Agents stay linear: decode, call the pure logic (rules_store), update the table, emit.
Transactions come in batches: each customer's state is read once and stored once per
batch, and reaches the changelog only after the batch's alerts are acknowledged, so a
crash at any point re-sends (same ids) rather than loses them. An event that fails
validation goes to the dead-letter topic and the agent goes on; it never raises, so Faust
never restarts it.

Churn days close by event time, partition by partition (rules_store/domain/clocks.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import faust

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import SchemaError, encode_profile
from rules_store.domain.alerts import Outgoing, after_event
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.events import (
    InvalidEventError,
    decode_json,
    parse_timestamp,
    parse_transaction,
)
from rules_store.domain.holdings import (
    CustomerState,
    apply_profile,
    apply_snapshot,
    apply_transaction,
)
from rules_store.domain.offers import OfferIndex
from rules_store.settings import Endpoints, Settings
from rules_store.views.metrics import EngineMetrics
from streams.app import create_app, declare_topic
from streams.dead_letters import dead_letter
from streams.faust_fixes import hold_flush_until, install_faust_fixes
from streams.health import AgentProgress
from streams.tansu import (
    EMBEDDED_FETCH_WAIT_MS,
    FENCE_CUSTOMER,
    install_changelog_fence,
    install_fetch_wait,
)
from streams.topics import TopicNames
from streams.web_api import register_web

log = logging.getLogger(__name__)


class ActiveBundle:
    """The bundle in use and its offer index, swapped as one when a new version arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[str, Bundle, OfferIndex] | None = None

    def update(self, version: str, bundle: Bundle) -> None:
        index = OfferIndex(bundle)  # built before the swap: events never wait for it
        with self._lock:
            self._current = (version, bundle, index)
        log.info("serving bundle version=%s", version)

    def get(self) -> tuple[str, Bundle, OfferIndex] | None:
        with self._lock:
            return self._current


def _customer_of(record: dict[str, Any], id_column: str) -> str:
    customer = record.get("customer_id", record.get(id_column))
    if not isinstance(customer, str) or not customer:
        msg = f"missing field 'customer_id' (or {id_column!r})"
        raise InvalidEventError(msg)
    return customer


class Outbox:
    """What one batch sends and stores: alerts and dead letters first, acknowledged; then
    each changed state once."""

    def __init__(self) -> None:
        self.messages: list[tuple[faust.TopicT, bytes | None, bytes]] = []
        self.states: dict[str, tuple[int, CustomerState]] = {}  # customer -> (partition, state)

    def store(self, partition: int, state: CustomerState) -> None:
        self.states[state.customer_id] = (partition, state)

    def send(self, topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        self.messages.append((topic, key, value))


def build_worker(
    settings: Settings,
    endpoints: Endpoints,
    active: ActiveBundle,
    *,
    app_id: str | None = None,
    store_problem: Callable[[], str | None] = lambda: None,
) -> faust.App:
    """The worker's Faust app. `store_problem` says why the bundle store cannot be read
    right now (None when it can), for /health."""
    names = TopicNames(settings.topic_prefix)
    metrics = EngineMetrics()
    install_faust_fixes()
    if endpoints.embedded_broker:
        install_changelog_fence()
    if settings.fetch_max_wait_ms is not None or endpoints.embedded_broker:
        install_fetch_wait(settings.fetch_max_wait_ms or EMBEDDED_FETCH_WAIT_MS)
    app = create_app(settings, endpoints, app_id=app_id or names.engine_group)
    transactions = declare_topic(app, names.transactions, settings)
    snapshots = declare_topic(app, names.holdings_snapshot, settings)
    profiles = declare_topic(app, names.profiles, settings)
    dead_letters = declare_topic(app, names.dead_letters, settings)
    alert_topics = {
        "cross_sell": declare_topic(app, names.cross_sell_alerts, settings),
        "retention": declare_topic(app, names.cross_sell_alerts, settings),
        "churn": declare_topic(app, names.churn_alerts, settings),
    }
    holdings = app.Table(
        "holdings",
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=bytes,
    )
    policy = ContactPolicy(settings.cooldown_days, settings.max_alerts_per_day)
    churn = ChurnPolicy(settings.churn_threshold, settings.churn_grace_days)
    clocks: PartitionClocks | None = None  # rebuilt from the table after each rebalance
    # One batch at a time across agents: a state read, changed and written by one batch
    # is never changed by another agent in between.
    lock = asyncio.Lock()

    progress = {
        "transactions": AgentProgress("transactions", names.transactions),
        "profiles": AgentProgress("profiles", names.profiles),
        "snapshot": AgentProgress("snapshot", names.holdings_snapshot),
    }

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    def _on_assigned(_sender: object, *_args: object, **_kwargs: object) -> None:
        nonlocal clocks
        clocks = None  # rebuilt from the recovered table with the next batch
        for agent in progress.values():
            agent.reassigned()

    def clocks_now() -> PartitionClocks:
        nonlocal clocks
        if clocks is None:
            clocks = PartitionClocks()
            clocks.learn(
                CustomerState.from_dict(json.loads(raw))
                for key, raw in holdings.data.items()
                if key != FENCE_CUSTOMER
            )
        return clocks

    # Decoded states by customer, with the stored bytes they came from: a state is decoded
    # again only when the table holds other bytes (e.g. recovered after a rebalance).
    decoded: dict[str, tuple[bytes, CustomerState]] = {}

    def state_of(customer: str, outbox: Outbox) -> CustomerState:
        if customer in outbox.states:
            return outbox.states[customer][1]
        stored = holdings.get(customer)
        if not stored:
            return CustomerState(customer)
        cached = decoded.get(customer)
        if cached is not None and cached[0] is stored:
            return cached[1]
        state = CustomerState.from_dict(json.loads(stored))
        decoded[customer] = (stored, state)
        return state

    def reject(outbox: Outbox, event: faust.EventT[bytes], reason: str) -> None:
        message = event.message
        record = dead_letter(
            reason=reason,
            raw=event.value,
            key=event.key,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        outbox.send(dead_letters, event.key, record)
        metrics.count_dead_letter()

    def refuse_far_ahead(partition: int, day: date) -> None:
        # Today in UTC: an event's own offset puts its day at most 14 hours ahead of it.
        clocks_now().refuse_far_ahead(
            partition,
            day,
            today=datetime.now(UTC).date(),
            max_future_days=settings.max_future_days,
        )

    def guarded(outbox: Outbox, event: faust.EventT[bytes], take: Callable[[], None]) -> None:
        """Take one record: applied, or dead-lettered with the reason; never raised.

        Anything but an InvalidEventError is a defect of ours, not the record's alone: it
        is logged with its position and the record dead-lettered, so it can be replayed
        once fixed, and the worker goes on with the next record.
        """
        message = event.message
        try:
            take()
        except InvalidEventError as exc:
            reject(outbox, event, str(exc))
        except Exception as exc:
            log.exception(
                "could not apply record topic=%s partition=%s offset=%s; dead-lettered",
                message.topic,
                message.partition,
                message.offset,
            )
            reject(outbox, event, f"internal error ({type(exc).__name__}): {exc}")
        progress_of[message.topic].took(message.partition, message.offset)

    progress_of = {agent.topic: agent for agent in progress.values()}

    def emit(outbox: Outbox, customer: str, alerts: list[Outgoing]) -> None:
        for kind, alert in alerts:
            outbox.send(alert_topics[kind], customer.encode(), alert.encode())

    last_write: asyncio.Future[None] | None = None

    async def send(topic: faust.TopicT, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """Hand a record to the producer, retrying while it refuses (the broker is away):
        the batch waits, and /health shows the agent stalled, rather than lose it."""
        delay = 0.5
        while True:
            try:
                return await topic.send(key=key, value=value)
            except Exception as exc:
                log.warning("send to %s failed (%s); retrying in %.1f s", topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def flush(outbox: Outbox) -> None:
        """Send the batch's alerts; store its states in the table at once (the next batch
        reads them) but write them to the changelog only once the alerts are acknowledged,
        in a task, so the agent does not wait: a commit waits for it (hold_flush_until),
        and each batch's writes follow the previous batch's."""
        nonlocal last_write
        sent = [await send(topic, key, value) for topic, key, value in outbox.messages]
        writes = []
        for customer, (partition, state) in outbox.states.items():
            value = json.dumps(state.to_dict()).encode()
            decoded[customer] = (value, state)
            holdings.data[customer] = value
            writes.append((partition, customer, value))
        if writes:
            last_write = asyncio.ensure_future(write_after(last_write, sent, writes))
            hold_flush_until(app.producer.buffer, last_write)

    async def write_after(
        previous: asyncio.Future[None] | None,
        sent: list[Awaitable[Any]],
        writes: list[tuple[int, str, bytes]],
    ) -> None:
        if previous is not None:
            await previous
        await asyncio.gather(*sent)  # acknowledged before any state that records them
        for partition, customer, value in writes:
            holdings.send_changelog(partition, customer, value)

    def update(
        outbox: Outbox,
        event: faust.EventT[bytes],
        customer: str,
        apply: Callable[..., CustomerState | None],
        *,
        event_id: str,
        ts: datetime,
    ) -> None:
        """Apply one event to a customer's state, then alert if the contact policy allows."""
        message = event.message
        source = f"{message.topic}:{message.partition}"
        before = state_of(customer, outbox)
        try:
            after = apply(before, source=source, offset=message.offset)
        except InvalidEventError as exc:  # e.g. dated before the grace period
            reject(outbox, event, str(exc))
            return
        stored, alerts = after_event(
            before,
            after,
            event_id=event_id,
            ts=ts,
            active=active.get(),
            policy=policy,
            churn=churn,
        )
        if stored is not None:
            outbox.store(message.partition, stored)
            clocks_now().track(message.partition, stored)
        emit(outbox, customer, alerts)
        metrics.count_alerts((kind for kind, _ in alerts), event_ts_s=message.timestamp)

    def close_days(outbox: Outbox, partition: int, ts: datetime) -> None:
        """Judge the earlier days of a partition's customers once its events reach a new day."""
        for stored, alerts in clocks_now().close_days(
            partition, ts, lambda c: state_of(c, outbox), active=active.get(), churn=churn
        ):
            outbox.store(partition, stored)
            emit(outbox, stored.customer_id, alerts)
            metrics.count_alerts(kind for kind, _ in alerts)  # a day close: no event to time

    def take_transaction(outbox: Outbox, event: faust.EventT[bytes]) -> None:
        tx = parse_transaction(decode_json(event.value))
        partition = event.message.partition
        refuse_far_ahead(partition, tx.ts.date())
        update(
            outbox,
            event,
            tx.customer_id,
            partial(apply_transaction, tx=tx, churn=churn),
            event_id=tx.event_id,
            ts=tx.ts,
        )
        close_days(outbox, partition, tx.ts)

    def take_profile(outbox: Outbox, event: faust.EventT[bytes]) -> None:
        current = active.get()
        if current is None:
            msg = "no active bundle yet: a profile cannot be encoded without its schema"
            raise InvalidEventError(msg)
        schema, unknown = current[1].schema, current[1].unknown_policy
        record = decode_json(event.value)
        customer = _customer_of(record, schema.id_column)
        ts = parse_timestamp(record.get("ts"))
        refuse_far_ahead(event.message.partition, ts.date())
        try:
            encode_profile(schema, record, unknown=unknown)  # validate before touching state
        except SchemaError as exc:
            raise InvalidEventError(f"profile: {exc}") from exc
        update(
            outbox,
            event,
            customer,
            partial(apply_profile, record=record, schema=schema, unknown=unknown),
            event_id=str(record.get("event_id") or f"profile:{customer}:{ts.isoformat()}"),
            ts=ts,
        )

    def take_snapshot_row(outbox: Outbox, event: faust.EventT[bytes]) -> None:
        message = event.message
        current = active.get()
        if current is None:
            msg = "no active bundle yet: a snapshot row cannot be encoded without its schema"
            raise InvalidEventError(msg)
        bundle = current[1]
        record = decode_json(event.value)
        customer = _customer_of(record, bundle.schema.id_column)
        as_of = record.get("as_of")
        after = apply_snapshot(
            state_of(customer, outbox),
            record,
            bundle.schema,
            unknown=bundle.unknown_policy,
            source=f"{message.topic}:{message.partition}",
            offset=message.offset,
            churn=churn,
        )
        if as_of is not None:  # checked by apply_snapshot: a valid day
            refuse_far_ahead(message.partition, date.fromisoformat(as_of))
        if after is not None:
            outbox.store(message.partition, after)
            clocks_now().track(message.partition, after)

    async def take(
        events: list[faust.EventT[bytes]],
        agent: str,
        take_one: Callable[[Outbox, faust.EventT[bytes]], None],
    ) -> None:
        outbox = Outbox()
        metrics.count_events(agent, len(events))
        for event in list(events):
            guarded(outbox, event, partial(take_one, outbox, event))
        await flush(outbox)

    async def run_agent(
        name: str,
        batches: AsyncIterator[list[faust.EventT[bytes]]],
        take_one: Callable[[Outbox, faust.EventT[bytes]], None],
    ) -> AsyncIterator[None]:
        try:
            async for events in batches:
                async with lock:
                    await take(events, name, take_one)
                yield None
        finally:
            progress[name].running = False  # only at shutdown: take() never raises for a record

    async def singles(stream: faust.StreamT[bytes]) -> AsyncIterator[list[faust.EventT[bytes]]]:
        async for event in stream.events():
            yield [event]

    @app.agent(transactions)
    async def process_transactions(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        within = settings.batch_ms / 1000
        batches = stream.take_events(settings.batch_size, within=within)  # type: ignore[attr-defined]
        async for done in run_agent("transactions", batches, take_transaction):
            yield done

    @app.agent(profiles)
    async def process_profiles(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in run_agent("profiles", singles(stream), take_profile):
            yield done

    @app.agent(snapshots)
    async def load_snapshot_rows(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for done in run_agent("snapshot", singles(stream), take_snapshot_row):
            yield done

    register_web(
        app,
        holdings=holdings,
        active=active,
        settings=settings,
        endpoints=endpoints,
        metrics=metrics,
        progress=progress,
        store_problem=store_problem,
    )
    return app
