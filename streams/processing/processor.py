"""The worker's per-batch logic: records in; alerts, dead letters and changed states out.

It reads states from a table-like mapping (Faust's table data in the worker, a dict in
tests), keeps changed ones decoded until a commit (`CurrentStates`), and hands each
batch's messages to a `Sender` (the worker's `Outflow`, a list in tests), so everything
between decoding a record and delivering its batch runs in-process. Each record is either
applied or dead-lettered with the reason: nothing it holds can make a handler raise.
Changed states and acceptance counts are encoded and written once per commit (`flush`).

Churn days close by event time, partition by partition (rules_store/domain/clocks.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from itertools import groupby
from typing import Any

from rules_store.bundle.model import Bundle
from rules_store.bundle.schema import Schema, SchemaError, profile_codes
from rules_store.domain.acceptance import AdaptivePolicy, ArmKey, PartitionBook, Tally
from rules_store.domain.adaptive import adaptive_for
from rules_store.domain.alerts import ActiveView, Learning, Outgoing
from rules_store.domain.arms import assign_arm
from rules_store.domain.churn import ChurnPolicy
from rules_store.domain.clocks import PartitionClocks
from rules_store.domain.contact import ContactPolicy
from rules_store.domain.event_alerts import (
    CrossSellDue,
    LedgerStep,
    LedgerSteps,
    decide_cross_sells,
    event_alerts,
)
from rules_store.domain.events import (
    InvalidEventError,
    customer_of,
    decode_json,
    decode_transaction,
    parse_timestamp,
)
from rules_store.domain.frozen import evolve
from rules_store.domain.holdings import (
    CustomerState,
    apply_profile,
    apply_snapshot,
    apply_transaction,
)
from rules_store.domain.outcomes import OutcomePolicy, parse_outcome, settle_outcome
from rules_store.domain.state_codec import (
    ClockView,
    StateFormatError,
    decode_book,
    decode_clock_view,
    encode_book,
)
from rules_store.views.metrics import EngineMetrics
from streams.kafka.dead_letters import dead_letter
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Message, Record, Sender
from streams.processing.progress import AgentProgress
from streams.processing.states import CurrentStates

log = logging.getLogger(__name__)


def _utc_today() -> date:
    # An event's own offset puts its day at most 14 hours ahead of UTC's.
    return datetime.now(UTC).date()


FLUSH_CHUNK = 100  # states encoded and written (a few ms) between two pauses for the batches


@dataclass(frozen=True)
class Policies:
    """What decides alerts and refusals, from the settings."""

    contact: ContactPolicy = field(default_factory=ContactPolicy)
    churn: ChurnPolicy = field(default_factory=ChurnPolicy)
    max_future_days: int = 1
    outcomes: OutcomePolicy = field(default_factory=OutcomePolicy)
    adaptive: AdaptivePolicy = field(default_factory=AdaptivePolicy)


BOOK_KEY = "__xsell_acceptance__:{}"  # a partition's acceptance counts, in the same table


def book_key(partition: int) -> str:
    return BOOK_KEY.format(partition)


def _no_counts(_version: str, _day: str) -> Mapping[ArmKey, Tally]:
    return {}


@dataclass(frozen=True)
class _Due:
    """A cross-sell offer decided at the end of the batch, and its alert's place."""

    position: int  # in the batch's messages
    record: Record
    due: CrossSellDue
    active: ActiveView


class _Batch:
    """One batch's messages and changed states (each customer's last state only), and the
    cross-sell offers due, scored together at its end (rules_store/domain/event_alerts.py)."""

    def __init__(self) -> None:
        self.messages: list[Message | None] = []  # None: a due offer's place, or none sent
        self.states: dict[str, tuple[int, CustomerState]] = {}
        self.dues: list[_Due] = []
        self.steps = LedgerSteps()  # the offers ledger's part of each applied event
        self.applied: list[tuple[Record, str]] = []  # (event, customer): counted at the end
        self.books: dict[int, PartitionBook] = {}  # changed acceptance counts by partition

    def store(self, partition: int, state: CustomerState) -> None:
        self.states[state.customer_id] = (partition, state)


class Processor:
    """Transactions, profiles and snapshot rows, each a batch of records at a time."""

    def __init__(
        self,
        table: MutableMapping[str, bytes],
        sender: Sender,
        *,
        names: TopicNames,
        active: Callable[[], ActiveView | None],
        policies: Policies,
        metrics: EngineMetrics | None = None,
        today: Callable[[], date] = _utc_today,
        ignore_keys: Collection[str] = (),
        state_cache_size: int = 50_000,
        day_counts: Callable[[str, str], Mapping[ArmKey, Tally]] = _no_counts,
        challenger: Callable[[], tuple[ActiveView, float] | None] = lambda: None,
    ) -> None:
        self.table, self.sender, self.names = table, sender, names
        self.active, self.policies, self.today = active, policies, today
        self.metrics = metrics or EngineMetrics()
        self.ignore_keys = frozenset(ignore_keys)  # table keys that hold no customer
        self.day_counts, self.challenger = day_counts, challenger
        self.progress = {
            names.transactions: AgentProgress("transactions", names.transactions),
            names.profiles: AgentProgress("profiles", names.profiles),
            names.holdings_snapshot: AgentProgress("snapshot", names.holdings_snapshot),
            names.outcomes: AgentProgress("outcomes", names.outcomes),
        }
        self._alert_topics = {
            "cross_sell": names.cross_sell_alerts,
            "retention": names.cross_sell_alerts,
            "churn": names.churn_alerts,
        }
        self._today = today()
        self._clocks: PartitionClocks | None = None  # rebuilt from the table when None
        self.states = CurrentStates(table, cache_size=state_cache_size)
        # One batch at a time across agents: a state read, changed and stored by one
        # batch is never changed by another in between.
        self._lock = asyncio.Lock()
        self._flushing = asyncio.Lock()
        self._books: dict[int, PartitionBook] = {}  # read from the table once per assignment
        self._priors: dict[str, AdaptivePolicy] = {}  # by bundle version

    def reassigned(self) -> None:
        """Partitions moved: clocks are rebuilt from the recovered table with the next batch."""
        self._clocks = None
        self._books.clear()
        self.states.forget()
        for agent in self.progress.values():
            agent.reassigned()

    async def transactions(self, records: Sequence[Record]) -> None:
        await self._take(records, "transactions", self._transaction)

    async def profiles(self, records: Sequence[Record]) -> None:
        await self._take(records, "profiles", self._profile)

    async def snapshot_rows(self, records: Sequence[Record]) -> None:
        await self._take(records, "snapshot", self._snapshot_row)

    async def outcomes(self, records: Sequence[Record]) -> None:
        await self._take(records, "outcomes", self._outcome)

    def books(self) -> dict[int, PartitionBook]:
        """The acceptance counts of the partitions read so far (mirrored to Redis)."""
        return dict(self._books)

    async def _take(
        self, records: Sequence[Record], source: str, take_one: Callable[[_Batch, Record], None]
    ) -> None:
        async with self._lock:
            self._today = self.today()  # once per batch: the wall clock for the future bound
            batch = _Batch()
            self.metrics.count_events(source, len(records))
            for record in records:
                self._guarded(batch, record, take_one)
            self._decide(batch)
            self._finish_ledgers(batch)
            for record, customer in batch.applied:
                self._count(batch, record, self._state_of(customer, batch))
            for partition, state in batch.states.values():
                self.states.put(partition, state)
            for partition, book in batch.books.items():
                self._books[partition] = book
                self.states.put_value(partition, book_key(partition), partial(encode_book, book))
            await self.sender.send([m for m in batch.messages if m is not None])

    async def flush(self) -> None:
        """Before a commit: once every message sent is acknowledged, write each changed
        state and acceptance count to the table and its changelog (never a state recording
        an alert that might still be lost).

        The states, and the messages their batches sent, are taken at once between two
        batches; waiting for those messages' acknowledgements, and encoding and writing
        the states (thousands at a busy commit, a chunk at a time), goes on while later
        batches run, so events do not wait for a commit. The offsets being committed were
        acknowledged before this began, so their effects are in what was taken. One
        flush at a time: a key's writes reach the changelog in order. A failure leaves
        everything taken dirty again, for the next commit (writing a state twice is
        harmless; committing past one never acknowledged is not).
        """
        async with self._flushing:
            async with self._lock:
                acknowledged = self.sender.acknowledgements()
                taken, values = self.states.take_dirty()
            try:
                await acknowledged
                loop = asyncio.get_running_loop()
                for start in range(0, len(taken), FLUSH_CHUNK):
                    began = loop.time()
                    chunk = taken[start : start + FLUSH_CHUNK]
                    await self.sender.write_changelog(self.states.write(chunk))
                    # As long again for the batches: one needs many turns of the loop (the
                    # fetch, the intake, each alert's send), and a bare yield gave it one
                    # per chunk, so events waited for most of the commit (p99 ~550 ms).
                    await asyncio.sleep(loop.time() - began)
                await self.sender.write_changelog(self.states.write_values(values))
                await self.sender.changelog_written()
            except BaseException:
                self.states.untake(taken, values)
                raise

    def _decide(self, batch: _Batch) -> None:
        """The batch's cross-sell offers, scored together per bundle in use. A failure is a
        defect of ours: the run is decided one by one, and a due that fails again has its
        record dead-lettered with the reason, as `_guarded` does."""
        for _, group in groupby(batch.dues, key=lambda d: id(d.active)):
            run = list(group)
            try:
                self._decide_run(batch, run)
            except Exception:
                log.exception("could not decide %d offers together; one by one", len(run))
                for due in run:
                    try:
                        self._decide_run(batch, [due])
                    except Exception as exc:
                        log.exception(
                            "could not decide the offer of topic=%s partition=%s offset=%s",
                            due.record.topic,
                            due.record.partition,
                            due.record.offset,
                        )
                        self._reject(
                            batch, due.record, f"internal error ({type(exc).__name__}): {exc}"
                        )

    def _decide_run(self, batch: _Batch, dues: Sequence[_Due]) -> None:
        alerts, latest = decide_cross_sells(
            [d.due for d in dues],
            lambda customer: batch.states[customer][1],
            active=dues[0].active,
            policy=self.policies.contact,
            steps=batch.steps,
        )
        for due, alert in zip(dues, alerts, strict=True):
            if alert is not None:
                kind, value = alert
                customer = due.due.context.customer_id
                batch.messages[due.position] = Message(
                    self._alert_topics[kind], customer.encode(), value.encode()
                )
                self.metrics.count_alerts([kind], event_ts_s=due.record.timestamp)
        for customer, state in latest.items():
            batch.store(batch.states[customer][0], state)

    def _guarded(
        self, batch: _Batch, record: Record, take_one: Callable[[_Batch, Record], None]
    ) -> None:
        """Take one record: applied, or dead-lettered with the reason; never raised.

        Anything but an InvalidEventError is a defect of ours, not the record's alone: it
        is logged with its position and the record dead-lettered, so it can be replayed
        once fixed, and the worker goes on with the next record.
        """
        try:
            take_one(batch, record)
        except InvalidEventError as exc:
            self._reject(batch, record, str(exc))
        except Exception as exc:
            log.exception(
                "could not apply record topic=%s partition=%s offset=%s; dead-lettered",
                record.topic,
                record.partition,
                record.offset,
            )
            self._reject(batch, record, f"internal error ({type(exc).__name__}): {exc}")
        self.progress[record.topic].took(record.partition, record.offset)

    def _reject(self, batch: _Batch, record: Record, reason: str) -> None:
        letter = dead_letter(
            reason=reason,
            raw=record.value,
            key=record.key,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        batch.messages.append(Message(self.names.dead_letters, record.key, letter))
        self.metrics.count_dead_letter()

    def _clocks_now(self) -> PartitionClocks:
        if self._clocks is None:
            started = time.monotonic()
            self._clocks = PartitionClocks()
            self._clocks.learn_views(self._readable_states())
            log.info("partition clocks rebuilt in %.1f s", time.monotonic() - started)
        return self._clocks

    def _readable_states(self) -> Iterator[ClockView]:
        """The table's states (a changed one not written yet as it is now); one this release
        cannot read is logged and left out of the clocks, so only that customer's own
        records fail (dead-lettered with the reason)."""
        for key, raw in self.table.items():
            if key in self.ignore_keys or key.startswith(BOOK_KEY[:-2]):
                continue
            if (pending := self.states.pending(key)) is not None:
                yield ClockView.of(pending)
                continue
            try:
                yield decode_clock_view(raw)  # what the clocks read only: they read every state
            except StateFormatError as exc:
                log.error("state of %s left out of the partition clocks: %s", key, exc)

    def _state_of(self, customer: str, batch: _Batch) -> CustomerState:
        if customer in batch.states:
            return batch.states[customer][1]
        return self.states.get(customer) or CustomerState(customer)

    def _refuse_far_ahead(self, partition: int, day: date) -> None:
        self._clocks_now().refuse_far_ahead(
            partition, day, today=self._today, max_future_days=self.policies.max_future_days
        )

    def _emit(self, batch: _Batch, customer: str, alerts: Iterable[Outgoing]) -> None:
        for kind, alert in alerts:
            batch.messages.append(
                Message(self._alert_topics[kind], customer.encode(), alert.encode())
            )

    def _update(
        self,
        batch: _Batch,
        record: Record,
        customer: str,
        apply: Callable[..., CustomerState | None],
        *,
        event_id: str,
        ts: datetime,
        opened: str | None = None,
    ) -> None:
        """Apply one event to a customer's state and send its churn alerts; a cross-sell
        offer due is decided with the batch's others (`_decide`), and the event's part in the
        offers ledger is made in event order with them; its counts at the batch's end."""
        source = f"{record.topic}:{record.partition}"
        before = self._state_of(customer, batch)
        after = apply(before, source=source, offset=record.offset)
        arm, active = self._arm_of(customer)
        learning = Learning(
            self.policies.outcomes,
            self._adaptive_for(active),
            self.day_counts,
            f"{source}@{record.offset}",
        )
        stored, alerts, due = event_alerts(
            before,
            after,
            event_id=event_id,
            ts=ts,
            active=active,
            churn=self.policies.churn,
            learning=learning,
            arm=arm,
        )
        batch.applied.append((record, customer))
        if stored is not None:
            batch.steps.add(LedgerStep(customer, opened, ts, learning))
            batch.store(record.partition, stored)
            self._clocks_now().track(record.partition, stored)
        self._emit(batch, customer, alerts)
        self.metrics.count_alerts((kind for kind, _ in alerts), event_ts_s=record.timestamp)
        if due is not None and active is not None:
            batch.dues.append(_Due(len(batch.messages), record, due, active))
            batch.messages.append(None)

    def _adaptive_for(self, view: ActiveView | None) -> AdaptivePolicy:
        """The adaptive policy with the prior from the serving bundle's offline figures."""
        if view is None or view.bundle.ranker is None:
            return self.policies.adaptive
        cached = self._priors.get(view.version)
        if cached is None:
            cached = self._priors[view.version] = adaptive_for(
                self.policies.adaptive, view.bundle.ranker.figures
            )
        return cached

    def _arm_of(self, customer: str) -> tuple[str, ActiveView | None]:
        """The bundle serving `customer`: the challenger for its share of customers."""
        challenge = self.challenger()
        if challenge is not None and assign_arm(customer, challenge[1]) == "challenger":
            return "challenger", challenge[0]
        return "champion", self.active()

    def _finish_ledgers(self, batch: _Batch) -> None:
        """The ledger steps no decision needed, made after the batch's decisions."""
        for customer in batch.steps.customers():
            partition, state = batch.states[customer]
            batch.store(partition, batch.steps.catch_up(state))

    def _book(self, batch: _Batch, partition: int) -> PartitionBook:
        if partition in batch.books:
            return batch.books[partition]
        if partition not in self._books:
            raw = self.table.get(book_key(partition))
            self._books[partition] = decode_book(raw) if raw else PartitionBook()
        return self._books[partition]

    def _count(self, batch: _Batch, record: Record, state: CustomerState) -> None:
        """Count what the event sent and settled (as its customer's ledger records them)
        in its partition's book, once: also when the state was stored before a crash and
        the counts were not."""
        if not state.offers.pending and not state.offers.settled:
            return  # most customers: no offer to count, and no copy of the book per event
        source = f"{record.topic}:{record.partition}"
        sent, settled = state.offers.caused_by(f"{source}@{record.offset}")
        if not (sent or settled):
            return  # an event that caused nothing moves nothing
        counted = self._book(batch, record.partition).count(source, record.offset, sent, settled)
        if counted is not None:
            batch.books[record.partition] = counted

    def _close_days(self, batch: _Batch, partition: int, ts: datetime) -> None:
        """Judge the earlier days of a partition's customers once its events reach a new day."""
        for stored, alerts in self._clocks_now().close_days(
            partition,
            ts,
            lambda c: self._state_of(c, batch),
            active=self.active(),
            churn=self.policies.churn,
        ):
            batch.store(partition, stored)
            self._emit(batch, stored.customer_id, alerts)
            self.metrics.count_alerts(kind for kind, _ in alerts)  # no event to time

    def _bundle(self, what: str) -> Bundle:
        current = self.active()
        if current is None:
            msg = f"no active bundle yet: {what} without its schema and catalog"
            raise InvalidEventError(msg)
        return current.bundle

    def _count_unseen(self, schema: Schema, fields: Mapping[str, Any], unknown: str) -> None:
        """Validate a profile before it touches state; count values given the unknown code."""
        try:
            self.metrics.count_unseen(profile_codes(schema, fields, unknown=unknown).unseen)
        except SchemaError as exc:
            raise InvalidEventError(f"profile: {exc}") from exc

    def _transaction(self, batch: _Batch, record: Record) -> None:
        catalog = self._bundle("a transaction's product cannot be checked").catalog
        tx = decode_transaction(record.value, catalog)
        self._refuse_far_ahead(record.partition, tx.ts.date())
        apply = partial(apply_transaction, tx=tx, catalog=catalog, churn=self.policies.churn)
        opened = tx.product if tx.kind == "open" else None
        self._update(
            batch, record, tx.customer_id, apply, event_id=tx.event_id, ts=tx.ts, opened=opened
        )
        self._close_days(batch, record.partition, tx.ts)

    def _profile(self, batch: _Batch, record: Record) -> None:
        bundle = self._bundle("a profile cannot be encoded")
        schema, unknown = bundle.schema, bundle.unknown_policy
        fields = decode_json(record.value)
        customer = customer_of(fields, schema.id_column)
        ts = parse_timestamp(fields.get("ts"))
        self._refuse_far_ahead(record.partition, ts.date())
        self._count_unseen(schema, fields, unknown)
        apply = partial(apply_profile, record=fields, schema=schema, unknown=unknown)
        event_id = str(fields.get("event_id") or f"profile:{customer}:{ts.isoformat()}")
        self._update(batch, record, customer, apply, event_id=event_id, ts=ts)

    def _snapshot_row(self, batch: _Batch, record: Record) -> None:
        bundle = self._bundle("a snapshot row cannot be encoded")
        fields = decode_json(record.value)
        customer = customer_of(fields, bundle.schema.id_column)
        self._count_unseen(bundle.schema, fields, bundle.unknown_policy)
        after = apply_snapshot(
            self._state_of(customer, batch),
            fields,
            bundle.schema,
            unknown=bundle.unknown_policy,
            source=f"{record.topic}:{record.partition}",
            offset=record.offset,
            churn=self.policies.churn,
        )
        as_of = fields.get("as_of")
        if as_of is not None:  # a valid day: apply_snapshot checked it
            self._refuse_far_ahead(record.partition, date.fromisoformat(as_of))
        if after is not None:
            batch.store(record.partition, after)
            self._clocks_now().track(record.partition, after)

    def _outcome(self, batch: _Batch, record: Record) -> None:
        """An answer to an offer: settles it in the customer's ledger, once, and counts it."""
        report = parse_outcome(decode_json(record.value))
        key = (record.key or b"").decode(errors="replace")
        if key != report.customer_id:
            msg = (
                f"keyed by {key!r}, but its alert names customer {report.customer_id!r}:"
                " send it keyed by that customer, so it reaches the partition of their offers"
            )
            raise InvalidEventError(msg)
        source = f"{record.topic}:{record.partition}"
        before = self._state_of(report.customer_id, batch)
        if before.positions.get(source, -1) < record.offset:  # not applied before a crash
            ledger, _ = settle_outcome(before.offers, report, by=f"{source}@{record.offset}")
            after = evolve(
                before, offers=ledger, positions={**before.positions, source: record.offset}
            )
            batch.store(record.partition, after)
        batch.applied.append((record, report.customer_id))
