"""A customer's state as stored in the holdings table and its changelog: the one codec.

Changelog records outlive deployments: a worker may read states written by an older (or,
during a rolling upgrade, a newer) release. Each record says its `format`; a record
without one is format 1's layout written before formats were numbered. A format this
release does not know is refused with what to do, never guessed at.

The churn figures' plain form is also what alerts and API answers carry.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import msgspec

from rules_store.domain.acceptance import ArmKey, PartitionBook, Tally
from rules_store.domain.churn import AssetHistory, ChurnFigures
from rules_store.domain.holdings import CustomerState
from rules_store.domain.outcomes import OfferLedger, SentOffer, SettledOffer
from rules_store.errors import XsellError

STATE_FORMAT = 2  # 2 added `offers` (the offers ledger); format 1 reads as an empty ledger
READABLE_FORMATS = (1, 2)


class StateFormatError(XsellError, ValueError):
    """A stored state this release cannot read."""


def figures_to_dict(figures: ChurnFigures) -> dict[str, Any]:
    return {
        "day": figures.day,
        "month_avg": figures.month_avg,
        "baseline_avg": figures.baseline_avg,
        "drop": figures.drop,
        "days_counted": figures.days_counted,
        "baseline_months": list(figures.baseline_months),
    }


def figures_from_dict(raw: Mapping[str, Any]) -> ChurnFigures:
    return ChurnFigures(
        day=str(raw["day"]),
        month_avg=float(raw["month_avg"]),
        baseline_avg=float(raw["baseline_avg"]),
        drop=float(raw["drop"]),
        days_counted=int(raw["days_counted"]),
        baseline_months=tuple(str(m) for m in raw["baseline_months"]),
    )


def _history_to_dict(history: AssetHistory) -> dict[str, Any]:
    return {
        "days": dict(history.days),
        "months": dict(history.months),
        "since": history.since,
        "latest": history.latest,
        "judged": history.judged,
        "alerted_month": history.alerted_month,
        "risk": figures_to_dict(history.risk) if history.risk else None,
        "due": history.due,
    }


def _history_from_dict(raw: Mapping[str, Any]) -> AssetHistory:
    return AssetHistory(
        days={str(k): float(v) for k, v in raw.get("days", {}).items()},
        months={str(k): float(v) for k, v in raw.get("months", {}).items()},
        since=raw.get("since"),
        latest=raw.get("latest"),
        judged=raw.get("judged"),
        alerted_month=raw.get("alerted_month"),
        risk=figures_from_dict(raw["risk"]) if raw.get("risk") else None,
        due=raw.get("due"),
    )


def _offer_to_list(offer: SentOffer) -> list[Any]:
    return [offer.product, offer.ts, offer.bundle_version, offer.segment, offer.arm, offer.by]


def _offer_from_list(raw: Any) -> SentOffer:
    product, ts, version, segment, arm, by = raw
    return SentOffer(str(product), str(ts), str(version), int(segment), str(arm), str(by))


def _ledger_to_dict(ledger: OfferLedger) -> dict[str, Any]:
    return {
        "pending": {k: _offer_to_list(o) for k, o in ledger.pending.items()},
        "settled": {
            k: [_offer_to_list(s.offer), s.outcome, s.by] for k, s in ledger.settled.items()
        },
        "declined": dict(ledger.declined),
    }


def _ledger_from_dict(raw: Mapping[str, Any]) -> OfferLedger:
    return OfferLedger(
        pending={str(k): _offer_from_list(v) for k, v in raw.get("pending", {}).items()},
        settled={
            str(k): SettledOffer(_offer_from_list(offer), outcome, str(by))
            for k, (offer, outcome, by) in raw.get("settled", {}).items()
        },
        declined={str(k): str(v) for k, v in raw.get("declined", {}).items()},
    )


def state_to_dict(state: CustomerState) -> dict[str, Any]:
    doc = {
        "format": STATE_FORMAT,
        "customer_id": state.customer_id,
        "balances": dict(state.balances),
        "branch_id": state.branch_id,
        "positions": dict(state.positions),
        "features": list(state.features) if state.features is not None else None,
        "last_offered": dict(state.last_offered),
        "alert_day": state.alert_day,
        "alerts_on_day": state.alerts_on_day,
        "assets": _history_to_dict(state.assets),
        "corporate": dict(state.corporate),
        "corporate_as_of": state.corporate_as_of,
    }
    offers = state.offers
    if offers.pending or offers.settled or offers.declined:  # most customers have none:
        doc["offers"] = _ledger_to_dict(offers)  # keep their states small
    return doc


def state_from_dict(raw: Mapping[str, Any]) -> CustomerState:
    """The state in `raw`; StateFormatError for a format this release does not read.

    >>> state_from_dict({"format": 9, "customer_id": "c1"})
    Traceback (most recent call last):
    ...
    rules_store.domain.state_codec.StateFormatError: stored state of customer 'c1' has format 9; this release reads formats 1, 2 (and unnumbered): run a release that knows format 9
    """
    found = raw.get("format", 1)
    if found not in READABLE_FORMATS:
        msg = (
            f"stored state of customer {raw.get('customer_id')!r} has format {found!r}; this "
            f"release reads formats {', '.join(map(str, READABLE_FORMATS))} (and unnumbered):"
            f" run a release that knows format {found!r}"
        )
        raise StateFormatError(msg)
    return CustomerState(
        customer_id=str(raw["customer_id"]),
        balances={str(k): float(v) for k, v in raw.get("balances", {}).items()},
        branch_id=raw.get("branch_id"),
        positions={str(k): int(v) for k, v in raw.get("positions", {}).items()},
        features=tuple(float(v) for v in raw["features"]) if raw.get("features") else None,
        last_offered={str(k): str(v) for k, v in raw.get("last_offered", {}).items()},
        alert_day=raw.get("alert_day"),
        alerts_on_day=int(raw.get("alerts_on_day", 0)),
        assets=_history_from_dict(raw.get("assets") or {}),
        corporate=dict(raw.get("corporate") or {}),
        corporate_as_of=raw.get("corporate_as_of"),
        offers=_ledger_from_dict(raw["offers"]) if raw.get("offers") else OfferLedger(),
    )


_ENCODER = msgspec.json.Encoder()


def encode_state(state: CustomerState) -> bytes:
    """The stored bytes of a state: compact JSON by msgspec (a fifth of `json.dumps`'s time,
    and a busy commit encodes nearly every customer). Every number in a state is finite
    (amounts are checked within ±1e15), which msgspec needs: it writes NaN as null.

    >>> encode_state(CustomerState("c1", balances={"国债": 5.0}))[:40].decode()
    '{"format":2,"customer_id":"c1","balances'
    >>> decode_state(encode_state(CustomerState("c1", balances={"国债": 5.0}))).balances
    {'国债': 5.0}
    """
    return _ENCODER.encode(state_to_dict(state))


def decode_state(raw: bytes) -> CustomerState:
    return state_from_dict(json.loads(raw))


BOOK_FORMAT = 1


def encode_book(book: PartitionBook) -> bytes:
    """A partition's acceptance counts as stored in the holdings table (its own key)."""
    return json.dumps(
        {
            "format": BOOK_FORMAT,
            "book": [
                [k.bundle_version, k.segment, k.product, t.sent, t.accepted, t.declined, t.ignored]
                for k, t in book.book.items()
            ],
            "positions": dict(book.positions),
        },
        ensure_ascii=False,
    ).encode()


def decode_book(raw: bytes) -> PartitionBook:
    doc = json.loads(raw)
    if doc.get("format") != BOOK_FORMAT:
        msg = f"stored acceptance counts have format {doc.get('format')!r}; this release reads {BOOK_FORMAT}"
        raise StateFormatError(msg)
    return PartitionBook(
        {
            ArmKey(str(v), int(s), str(p)): Tally(int(a), int(d), int(i), int(n))
            for v, s, p, n, a, d, i in doc["book"]
        },
        {str(k): int(v) for k, v in doc["positions"].items()},
    )


class ClockView(NamedTuple):
    """What the partition clocks read of a state (rules_store/domain/clocks.py)."""

    customer_id: str
    partitions: frozenset[int]  # of the sources in its positions
    latest: str | None
    due: str | None

    @classmethod
    def of(cls, state: CustomerState) -> ClockView:
        sources = state.positions
        partitions = frozenset(int(source.rpartition(":")[2]) for source in sources)
        return cls(state.customer_id, partitions, state.assets.latest, state.assets.due)


# What the partition clocks read, found in the stored bytes without decoding the rest: a
# worker rebuilds its clocks from every state it holds, and with RocksDB that is every
# customer of its partitions (decode_state takes ~16 us a state: 16 s for a million).
# A key's quoted name appears unescaped only as a key (a quote inside a string is
# escaped); `latest` and `due` are the first after `"assets":` (day and month keys before
# them, the figures' keys after). tests/unit/test_clock_view.py holds this to decode_state.


class _Layout(NamedTuple):
    """Where the clocks' fields are in one JSON layout (`comma`, `colon`: its separators)."""

    head: bytes
    positions: bytes
    assets: bytes
    latest: bytes
    due: bytes
    source_partition: re.Pattern[bytes]

    @classmethod
    def of(cls, comma: str, colon: str) -> _Layout:
        def key(name: str, then: str = "") -> bytes:
            return f'"{name}"{colon}{then}'.encode()

        return cls(
            f'{{"format"{colon}{STATE_FORMAT}{comma}"customer_id"{colon}"'.encode(),
            key("positions", "{"),
            key("assets", "{"),
            key("latest"),
            key("due"),
            re.compile(rb":(\d+)\"" + re.escape(colon.encode())),
        )


# encode_state's, and json.dumps's: states stored before December 2026 are read fast too.
_LAYOUTS = (_Layout.of(",", ":"), _Layout.of(", ", ": "))


def _day_at(raw: bytes, at: int) -> str | Literal[False] | None:
    """The day (or null) whose value starts at `at`; False when it is neither."""
    if raw.startswith(b"null", at):
        return None
    end = raw.find(b'"', at + 1)
    if raw[at : at + 1] != b'"' or end < 0 or b"\\" in raw[at:end]:
        return False
    return sys.intern(raw[at + 1 : end].decode())  # a million customers share a few days


def _fast_clock_view(raw: bytes, layout: _Layout) -> ClockView | None:
    head = len(layout.head)
    customer_end = raw.find(b'"', head)
    positions = raw.find(layout.positions, customer_end)
    positions_end = raw.find(b"}", positions)
    assets = raw.find(layout.assets, positions_end)
    latest, due = raw.find(layout.latest, assets), raw.find(layout.due, assets)
    customer = raw[head:customer_end]
    if min(customer_end, positions, positions_end, assets, latest, due) <= 0 or b"\\" in customer:
        return None
    latest_day = _day_at(raw, latest + len(layout.latest))
    due_day = _day_at(raw, due + len(layout.due))
    if latest_day is False or due_day is False:
        return None
    partitions = layout.source_partition.findall(raw, positions, positions_end)
    return ClockView(customer.decode(), frozenset(map(int, partitions)), latest_day, due_day)


def decode_clock_view(raw: bytes) -> ClockView:
    """What the partition clocks read of a stored state, without decoding the rest, in the
    layout encode_state writes (or json.dumps wrote); decode_state's answer for any other.

    >>> decode_clock_view(encode_state(CustomerState("c1", positions={"t:3": 7})))
    ClockView(customer_id='c1', partitions=frozenset({3}), latest=None, due=None)
    """
    for layout in _LAYOUTS:
        if raw.startswith(layout.head):
            found = _fast_clock_view(raw, layout)
            if found is not None:
                return found
    return ClockView.of(decode_state(raw))
