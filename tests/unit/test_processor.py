"""The worker's per-batch logic in-process: a dict as the table, a list as the sender."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rules_store.bundle.model import SegmentRules
from rules_store.bundle.schema import RETAIL_SCHEMA, schema_from_dict
from rules_store.domain.alerts import ActiveView
from rules_store.domain.offers import OfferIndex
from rules_store.domain.state_codec import decode_state
from rules_store.views.customer_view import customer_json
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Message, Record, Stored
from streams.processing.processor import Policies, Processor, book_key
from tests.default_catalog import PRODUCT_BALANCES, financial_assets
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail

NAMES = TopicNames("t")
DAY = "2026-11-23T10:00:00+08:00"


class ListSender:
    """Messages into a list, changelog writes counted: what Outflow does, without Kafka.
    `written` lists the customers written to the changelog, `deliveries` those written by
    each commit (`_commit`)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.written: list[str] = []
        self.deliveries: list[list[str]] = []
        self.refused: list[bool] = []  # popped per commit: True fails its acknowledgements
        self.lost: list[bool] = []  # popped per commit: True fails its changelog writes

    async def send(self, messages: Sequence[Message]) -> None:
        self.messages += messages

    def acknowledgements(self) -> Awaitable[object]:
        return _refused() if self.refused and self.refused.pop() else asyncio.sleep(0)

    async def write_changelog(self, states: Sequence[Stored]) -> None:
        self.written += [s.customer for s in states]

    async def changelog_written(self) -> None:
        if self.lost and self.lost.pop():
            msg = "the broker lost a changelog batch"
            raise RuntimeError(msg)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.value) for m in self.messages if m.topic == topic]


async def _refused() -> None:
    msg = "the broker refused a message"
    raise RuntimeError(msg)


@pytest.fixture(scope="module")
def active(tmp_path_factory: pytest.TempPathFactory) -> ActiveView:
    path: Path = tmp_path_factory.mktemp("processor") / "c.del"
    write_retail(generate_retail(1_500, seed=12, dirty_share=0.0), path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    return ActiveView("v1", bundle, OfferIndex(bundle))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """Customers without 理财 and with three months of history three times today's assets
    (so a month of today's assets is a drop of two thirds: churn, once judged)."""
    found = []
    for row in generate_retail(400, seed=13, dirty_share=0.0).to_dict("records"):
        if row["理财余额"] != 0:
            continue
        total = financial_assets(
            {p: sum(float(row[c]) for c in cols) for p, cols in PRODUCT_BALANCES.items()}
        )
        if total > 0:
            months = {m: 3 * total for m in ("2026-08", "2026-09", "2026-10")}
            found.append(row | {"as_of": "2026-10-31", "months": months})
    return found[:5]


def _processor(
    active: ActiveView,
    *,
    table: dict[str, bytes] | None = None,
    policies: Policies | None = None,
    **options: Any,
) -> tuple[Processor, ListSender, dict[str, bytes]]:
    table = {} if table is None else table
    sender = ListSender()
    processor = Processor(
        table,
        sender,
        names=NAMES,
        active=lambda: active,
        policies=policies or Policies(),
        today=lambda: date(2026, 11, 30),
        **options,
    )
    return processor, sender, table


def _commit(processor: Processor) -> None:
    """What runs before each commit: changed states to the table and the changelog."""
    sender = processor.sender
    assert isinstance(sender, ListSender)
    written = len(sender.written)
    asyncio.run(processor.flush())
    sender.deliveries.append(sender.written[written:])


def _snapshot(rows: list[dict[str, Any]]) -> list[Record]:
    return [
        Record(NAMES.holdings_snapshot, 0, i, r["客户编号"].encode(), json.dumps(r).encode())
        for i, r in enumerate(rows)
    ]


def _tx(offset: int, customer: str, **fields: Any) -> Record:
    event = {
        "event_id": f"e{offset}",
        "customer_id": customer,
        "ts": DAY,
        "product": "理财",
        "kind": "credit",
        "amount": 5_000.0,
    } | fields
    return Record(NAMES.transactions, 0, offset, customer.encode(), json.dumps(event).encode())


def test_a_commit_writes_each_changed_customer_once_and_alerts_on_new_holdings(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows)))
    customer = rows[0]["客户编号"]
    asyncio.run(
        processor.transactions([_tx(0, customer), _tx(1, customer, kind="debit", amount=100.0)])
    )
    asyncio.run(processor.transactions([_tx(2, customer)]))
    assert customer not in table  # kept decoded until a commit
    assert processor.states.get(customer).balances["理财"] == 9_900.0  # type: ignore[union-attr]
    _commit(processor)
    # two batches, one write each; the partition's acceptance counts (an offer sent) too
    assert sender.deliveries == [[r["客户编号"] for r in rows] + [book_key(0)]]
    state = decode_state(table[customer])
    assert state.balances["理财"] == 9_900.0
    assert state.positions == {f"{NAMES.holdings_snapshot}:0": 0, f"{NAMES.transactions}:0": 2}
    alerts = sender.on(NAMES.cross_sell_alerts)
    assert [a["event_id"] for a in alerts] == ["e0"]  # holdings changed once: 理财 opened
    assert alerts[0]["product"] != "理财"
    assert alerts[0]["bundle_version"] == "v1"


BAD = {
    "tombstone": (None, "tombstone"),
    "not JSON": (b'{"event_id": ', "not JSON"),
    "deep": (b"[" * 5_000 + b"]" * 5_000, "nested too deep"),
    "not an object": (b"[1, 2]", "expected a JSON object"),
    "missing field": (b'{"customer_id": "c"}', "missing field 'event_id'"),
    "unknown product": (
        json.dumps({**json.loads(_tx(0, "c").value or b""), "product": "比特币"}).encode(),
        "unknown product",
    ),
    "huge amount": (
        (_tx(0, "c").value or b"").replace(b"5000.0", b"1" + b"0" * 400),
        "must be a finite number",
    ),
    "far future": (
        json.dumps(
            {**json.loads(_tx(0, "c").value or b""), "ts": "2027-06-01T00:00:00+08:00"}
        ).encode(),
        "XSELL_MAX_FUTURE_DAYS",
    ),
    "too late": (
        json.dumps(
            {**json.loads(_tx(0, "c").value or b""), "ts": "2026-11-01T00:00:00+08:00"}
        ).encode(),
        "days before",
    ),
}


def test_a_batch_run_while_a_commit_writes_keeps_its_change_for_the_next_commit(
    active: ActiveView, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.processing.processor.FLUSH_CHUNK", 1)  # a batch after each
    processor, sender, table = _processor(active)
    known, new = rows[0]["客户编号"], "c-not-in-the-table-yet"
    asyncio.run(processor.snapshot_rows(_snapshot(rows[:1])))
    _commit(processor)

    async def commit_with_a_batch_in_between() -> None:
        await processor.transactions([_tx(0, known), _tx(1, new, amount=100.0)])
        # The commit takes both states and writes `known` first; the batch runs before
        # `new` is written, and must see its taken state, not an empty one.
        await asyncio.gather(processor.flush(), processor.transactions([_tx(2, new, amount=5.0)]))

    asyncio.run(commit_with_a_batch_in_between())
    assert sender.written[-3:] == [known, new, book_key(0)]  # counts after the states
    assert decode_state(table[new]).balances["理财"] == 100.0  # what the commit took
    assert processor.states.get(new).balances["理财"] == 105.0  # type: ignore[union-attr]
    _commit(processor)
    assert sender.deliveries[-1] == [new]
    assert decode_state(table[new]).balances["理财"] == 105.0


def test_a_commit_whose_messages_fail_leaves_its_states_to_the_next_commit(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    customer = rows[0]["客户编号"]
    asyncio.run(processor.transactions([_tx(0, customer)]))
    sender.refused.append(True)
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(processor.flush())
    assert customer not in table
    _commit(processor)
    assert sender.deliveries == [[customer]]
    assert decode_state(table[customer]).balances["理财"] == 5_000.0


def test_a_commit_whose_changelog_writes_fail_writes_them_all_again_at_the_next(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, _ = _processor(active)
    first, second = rows[0]["客户编号"], rows[1]["客户编号"]
    asyncio.run(processor.transactions([_tx(0, first), _tx(1, second)]))
    sender.lost.append(True)
    with pytest.raises(RuntimeError, match="lost"):
        asyncio.run(processor.flush())
    asyncio.run(processor.transactions([_tx(2, second, amount=7.0)]))
    _commit(processor)
    # Both again (handed over, never known to be written); the second in its newer state.
    assert sorted(sender.deliveries[-1]) == sorted([first, second])
    assert processor.states.get(second).balances["理财"] == 5_007.0  # type: ignore[union-attr]


def test_each_kind_of_bad_record_is_dead_lettered_with_its_reason_and_source(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, _ = _processor(active)
    asyncio.run(processor.transactions([_tx(0, "c", ts="2026-11-20T10:00:00+08:00")]))
    records = [
        Record(NAMES.transactions, 0, 1 + i, b"c", raw) for i, (raw, _) in enumerate(BAD.values())
    ]
    asyncio.run(processor.transactions(records))
    bad_profile = Record(NAMES.profiles, 0, 0, b"c", b'{"customer_id": "c", "ts": "x"}')
    asyncio.run(processor.profiles([bad_profile]))
    asyncio.run(processor.snapshot_rows([Record(NAMES.holdings_snapshot, 0, 0, b"c", None)]))
    dead = sender.on(NAMES.dead_letters)
    assert len(dead) == len(BAD) + 2
    for letter, (name, (raw, reason)) in zip(dead, BAD.items(), strict=False):
        assert reason in letter["reason"], name
        assert letter["source"]["topic"] == NAMES.transactions
        assert letter["raw_size"] == (len(raw) if raw is not None else None)
    assert "not ISO 8601" in dead[-2]["reason"]
    assert dead[-2]["source"]["topic"] == NAMES.profiles
    assert "tombstone" in dead[-1]["reason"]
    assert processor.metrics.dead_letters == len(BAD) + 2
    # Every bad record was taken: /health sees progress on each topic.
    assert processor.progress[NAMES.transactions].next_offset == {0: len(BAD) + 1}


def test_a_repeated_offset_changes_nothing_and_a_resent_alert_keeps_its_id(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows)))
    customer = rows[1]["客户编号"]
    asyncio.run(processor.transactions([_tx(7, customer)]))
    _commit(processor)
    after = table[customer]
    first = sender.on(NAMES.cross_sell_alerts)
    asyncio.run(processor.transactions([_tx(7, customer)]))  # re-read after a crash
    _commit(processor)
    assert table[customer] is after
    assert sender.deliveries[-1] == []
    assert sender.on(NAMES.cross_sell_alerts) == first
    # A worker that crashed before storing the state sends the same alert again.
    again, again_sender, _ = _processor(active)
    asyncio.run(again.snapshot_rows(_snapshot(rows)))
    asyncio.run(again.transactions([_tx(7, customer)]))
    assert again_sender.on(NAMES.cross_sell_alerts)[0]["alert_id"] == first[0]["alert_id"]


def test_a_new_day_in_a_partition_judges_its_silent_customers(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, _ = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows)))
    day = "2026-11-{:02d}T10:00:00+08:00"
    # Someone else's events move the partition's clock through November, one day at a
    # time; the snapshot customers stay silent at a third of their history: churn.
    asyncio.run(
        processor.transactions([_tx(100 + d, "other", ts=day.format(d)) for d in range(1, 30)])
    )
    churned = {a["customer_id"] for a in sender.on(NAMES.churn_alerts)}
    assert churned == {r["客户编号"] for r in rows}


def test_a_state_of_an_unknown_format_fails_only_its_own_customer(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows)))
    _commit(processor)
    table["from-the-future"] = json.dumps({"format": 99, "customer_id": "from-the-future"}).encode()
    processor.reassigned()  # clocks rebuilt from the table, as after a rebalance
    customer = rows[2]["客户编号"]
    asyncio.run(processor.transactions([_tx(20, "from-the-future"), _tx(21, customer)]))
    _commit(processor)
    dead = sender.on(NAMES.dead_letters)
    assert len(dead) == 1
    assert "has format 99" in dead[0]["reason"]
    assert decode_state(table[customer]).balances["理财"] == 5_000.0


def test_a_restart_from_the_commit_with_a_table_written_further_closes_the_same_days(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    """kill -9 between two changelog writes of a batch: the table holds the state of the
    event that began day 21 but not the closes it caused. Read again from the committed
    offset, the days closed must be those of a run without the crash (a partition clock
    learned from the table used to skip that day's closes: seen in the kill -9 test)."""
    day = "2026-11-{:02d}T10:00:00+08:00"
    events = [_tx(100 + 2 * d, "other", ts=day.format(d)) for d in range(1, 22)]
    # A snapshot customer's balance moves on day 20: due again, judged when day 21 begins.
    moved = rows[0]["客户编号"]
    events.insert(-1, _tx(141, moved, ts=day.format(20)))
    reference, _, expected = _processor(active)
    asyncio.run(reference.snapshot_rows(_snapshot(rows)))
    asyncio.run(reference.transactions(events))
    _commit(reference)

    crashed, _, table = _processor(active)
    asyncio.run(crashed.snapshot_rows(_snapshot(rows)))
    asyncio.run(crashed.transactions(events[:-1]))  # committed through day 20
    _commit(crashed)
    written = dict(table)
    asyncio.run(crashed.transactions(events[-1:]))  # day 21: only "other" reached the changelog
    _commit(crashed)
    written["other"] = table["other"]
    restarted, _, _ = _processor(active)
    restarted.table.update(written)  # type: ignore[attr-defined]
    asyncio.run(restarted.transactions(events[-1:]))
    _commit(restarted)
    assert decode_state(expected[moved]).assets.judged == "2026-11-20"
    assert {c: decode_state(v) for c, v in restarted.table.items()} == {  # type: ignore[attr-defined]
        c: decode_state(v) for c, v in expected.items()
    }


def _recatalogued(active: ActiveView) -> ActiveView:
    """The same bundle with 理财 dropped and a new product (新产品, its own balance) added."""
    bundle = active.bundle
    doc = bundle.schema.to_dict()
    doc["fields"].append({"name": "新产品余额", "kind": "balance"})
    doc["products"] = [p for p in doc["products"] if p["name"] != "理财"] + [
        {"name": "新产品", "balances": ["新产品余额"], "financial_asset": True}
    ]
    schema = schema_from_dict(doc)
    n = len(schema.products.names)
    segments = tuple(
        SegmentRules(s.segment, s.customers, (), tuple((i, 0.5) for i in range(n)))
        for s in bundle.segments
    )
    other = replace(bundle, schema=schema, segments=segments)
    return ActiveView("v2", other, OfferIndex(other))


def test_a_state_written_under_one_catalog_is_read_under_another(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows[:1])))
    customer = rows[0]["客户编号"]
    asyncio.run(processor.transactions([_tx(0, customer)]))  # 理财 5,000 under catalog 1
    _commit(processor)
    before = decode_state(table[customer])
    assert "理财" in active.bundle.catalog.products_of(before.held_in(active.bundle.catalog))

    second = _recatalogued(active)
    processor.active = lambda: second
    asyncio.run(
        processor.transactions(
            [_tx(1, customer, product="新产品", amount=70.0), _tx(2, customer, product="理财")]
        )
    )
    _commit(processor)
    after = decode_state(table[customer])
    catalog = second.bundle.catalog
    assert after.balances["理财"] == 5_000.0  # kept, but ignored
    assert after.balances["新产品"] == 70.0  # started empty
    held = catalog.products_of(after.held_in(catalog))
    assert "理财" not in held
    assert "新产品" in held
    assert catalog.financial_total(after.balances) == round(
        catalog.financial_total(before.balances) + 70.0, 2
    )
    (letter,) = sender.on(NAMES.dead_letters)
    assert "unknown product '理财'" in letter["reason"]
    view = customer_json(after, second)
    assert "理财" not in view["holdings"]["products"]
    assert all(o["product"] in catalog.names for o in view["offers"])


def test_an_unseen_value_of_a_learned_field_is_coded_and_counted_not_dead_lettered(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    learned = replace(
        active.bundle,
        schema=replace(
            active.bundle.schema,
            fields=tuple(
                replace(f, unknown="code") if f.name == "学历" else f
                for f in active.bundle.schema.fields
            ),
        ),
    )
    for view, dead, counted in ((active, 1, 0), (ActiveView("v3", learned, active.offers), 0, 1)):
        processor, sender, _ = _processor(view)
        row = rows[1] | {"学历": "博士后"}
        asyncio.run(processor.snapshot_rows(_snapshot([row])))
        assert len(sender.on(NAMES.dead_letters)) == dead
        assert processor.metrics.unseen_values["学历"] == counted


def test_acceptance_counts_wait_for_the_commit_and_a_failed_one_leaves_them_to_the_next(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    processor, sender, table = _processor(active)
    asyncio.run(processor.snapshot_rows(_snapshot(rows[:1])))
    _commit(processor)
    asyncio.run(processor.transactions([_tx(1, rows[0]["客户编号"])]))  # 理财 opened: an offer
    assert book_key(0) not in table  # counted, not written yet
    sender.refused.append(True)
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(processor.flush())
    assert book_key(0) not in table
    _commit(processor)
    assert sender.deliveries[-1] == [rows[0]["客户编号"], book_key(0)]
    assert book_key(0) in table


def test_changed_states_outlast_the_decoded_states_bound_until_their_commit(
    active: ActiveView, rows: list[dict[str, Any]]
) -> None:
    """The cache of decoded states is bounded; states a commit has still to write are not
    in it, so none is lost to the bound, and the table's are decoded again when dropped."""
    processor, sender, table = _processor(active, state_cache_size=1)
    asyncio.run(processor.snapshot_rows(_snapshot(rows)))
    customers = [r["客户编号"] for r in rows]
    assert all(processor.states.get(c) is not None for c in customers)
    _commit(processor)
    assert sender.deliveries == [customers]
    assert len(processor.states.cache) == 1
    for offset, customer in enumerate(customers):
        asyncio.run(processor.transactions([_tx(offset, customer)]))
    _commit(processor)
    for customer in customers:
        assert decode_state(table[customer]).balances["理财"] == 5_000.0
        assert processor.states.get(customer) == decode_state(table[customer])
