"""Rankers served from a bundle: the numpy evaluators equal scikit-learn, the safe codec
keeps them exactly, and the stream, /predict and the batch give the same offers, each
with its evidence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import replace
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rules_store.bundle.codec import (
    BundleFormatError,
    bundle_from_dict,
    bundle_to_dict,
    bundle_to_json,
)
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.domain.acceptance import AdaptivePolicy
from rules_store.domain.alerts import ActiveView
from rules_store.domain.offers import OfferIndex
from rules_store.domain.ranking import Customers, Inputs, held_bits, top_offers
from rules_store.views.predict import parse_predict_request, predict
from streams.kafka.topics import TopicNames
from streams.processing.outbox import Record
from streams.processing.processor import Policies, Processor
from tests.cli import run_cli
from tests.unit.test_processor import ListSender
from training.batch import cross_sell
from training.generate import generate_retail, write_retail
from training.model_export import export_estimator
from training.rankers.fit import RankerParams, fit_rankers
from training.rankers.propensity import PROPENSITY_KINDS, fit_quietly, make_propensity_estimator
from training.retail import TrainParams, train_retail

NAMES = TopicNames("t")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path: Path = tmp_path_factory.mktemp("rankers") / "c.del"
    frame = generate_retail(3_000, seed=21, dirty_share=0.0)
    write_retail(frame, path, "del")
    result = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3))
    data, labels = result.data, result.segmentation.labels
    customers = Customers(data.features, data.masks, labels)
    rankers, _ = fit_rankers(
        customers, result.bundle.catalog, data.feature_names, result.bundle.segments, RankerParams()
    )
    return {
        "path": path,
        "frame": frame,
        "result": result,
        "customers": customers,
        "rankers": rankers,
    }


@pytest.mark.parametrize("kind", PROPENSITY_KINDS)
def test_the_numpy_evaluator_equals_scikit_learn_within_1e_9(kind: str) -> None:
    rng = np.random.default_rng(5)
    rows = np.hstack(
        [rng.normal(size=(2_000, 6)) * [1, 10, 100, 1, 1, 1], rng.integers(0, 2, (2_000, 3))]
    )
    y = (rows[:, 0] + rows[:, 1] / 10 - rows[:, 6] + rng.normal(size=2_000) > 0).astype(float)
    fitted = fit_quietly(make_propensity_estimator(kind, 7), rows, y)  # type: ignore[arg-type]
    ours = export_estimator(fitted).predict(rows)
    theirs = fitted.predict_proba(rows)[:, 1]
    assert np.max(np.abs(ours - theirs)) <= 1e-9


def test_a_bundle_keeps_its_ranker_exactly_through_the_safe_codec(trained: dict[str, Any]) -> None:
    from training.rankers.fit import spec_of

    bundle = trained["result"].bundle
    customers = trained["customers"]
    for name in ("itemcf", "propensity", "blend"):
        scorer = trained["rankers"][name]
        served = replace(bundle, ranker=spec_of(scorer, {"MAP@7": 0.5}))
        loaded = bundle_from_dict(json.loads(bundle_to_json(served)))
        again = OfferIndex(loaded).scorer.scores(customers)
        assert np.array_equal(again, scorer.scores(customers)), name
        assert loaded.ranker is not None
        assert loaded.ranker.figures == {"MAP@7": 0.5}


def test_a_malformed_ranker_is_refused_with_its_path(trained: dict[str, Any]) -> None:
    from training.rankers.fit import spec_of

    bundle = replace(trained["result"].bundle, ranker=spec_of(trained["rankers"]["itemcf"], {}))
    doc = bundle_to_dict(bundle)
    doc["ranker"]["similarity"][2] = doc["ranker"]["similarity"][2][:-1]
    with pytest.raises(
        BundleFormatError, match=r"ranker\.similarity\[2\] has 7 values, expected 8"
    ):
        bundle_from_dict(doc)
    doc = bundle_to_dict(bundle) | {"ranker": {"name": "usercf"}}
    with pytest.raises(BundleFormatError, match=r"ranker\.name is 'usercf'; expected one of"):
        bundle_from_dict(doc)


def test_offers_never_hold_a_held_product_and_come_best_first(trained: dict[str, Any]) -> None:
    customers = trained["customers"]
    for name, scorer in trained["rankers"].items():
        scores = scorer.scores(customers)
        top = top_offers(scores, customers.held, 3)
        held = held_bits(customers.held, scores.shape[1]) > 0
        rows = np.arange(len(top))[:, None]
        assert not (held[rows, np.maximum(top, 0)] & (top >= 0)).any(), name
        picked = np.where(top >= 0, scores[rows, np.maximum(top, 0)], -np.inf)
        assert (np.diff(picked, axis=1) <= 0).all(), name


@pytest.fixture(scope="module")
def served(trained: dict[str, Any]) -> ActiveView:
    from training.rankers.fit import spec_of

    bundle = replace(trained["result"].bundle, ranker=spec_of(trained["rankers"]["blend"], {}))
    bundle = bundle_from_dict(json.loads(bundle_to_json(bundle)))
    return ActiveView("v-blend", bundle, OfferIndex(bundle))


def test_predict_gives_every_products_probability_and_the_batch_offers(
    trained: dict[str, Any], served: ActiveView
) -> None:
    frame = trained["frame"]
    row = frame.iloc[0]
    profile = {f.name: row[f.name] for f in RETAIL_SCHEMA.segment_fields}
    profile = {k: (v.item() if hasattr(v, "item") else v) for k, v in profile.items()}
    balances = {c: float(row[c]) for c in RETAIL_SCHEMA.columns if c.endswith("余额")}
    request = parse_predict_request(
        {"profile": profile, "balances": balances, "top_k": 3}, served.bundle.schema
    )
    answer = predict(request, served, threshold=0.5)
    assert answer["ranker"] == "blend"
    assert set(answer["probabilities"]) == set(served.bundle.items)
    assert all(0 < p < 1 for p in answer["probabilities"].values())
    offered = [o["product"] for o in answer["offers"]]
    lacking = {p: v for p, v in answer["probabilities"].items() if p not in answer["holdings"]}
    assert offered == sorted(lacking, key=lambda p: -lacking[p])[:3]
    assert all(
        o["evidence"]["ranker"] == "blend" and o["evidence"]["top_inputs"] for o in answer["offers"]
    )
    batch = cross_sell(served.bundle, trained["result"].data, top_k=3)
    mine = batch[batch[RETAIL_SCHEMA.id_column] == str(row[RETAIL_SCHEMA.id_column])]
    assert mine["product"].tolist() == offered


def _batch(processor: Processor, batch: Coroutine[Any, Any, None]) -> None:
    """A batch, then a commit (its states into the table)."""
    asyncio.run(batch)
    asyncio.run(processor.flush())


def test_the_stream_alerts_with_the_rankers_offer_and_its_evidence(
    trained: dict[str, Any], served: ActiveView
) -> None:
    row = trained["frame"].iloc[1].to_dict()
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k != "persona"}
    customer = str(row[RETAIL_SCHEMA.id_column])
    table: dict[str, bytes] = {}
    sender = ListSender()
    processor = Processor(
        table,
        sender,
        names=NAMES,
        active=lambda: served,
        # The ranker's own best offer: no outcome yet, and no Thompson exploration.
        policies=Policies(adaptive=AdaptivePolicy(thompson=False)),
        today=lambda: date(2026, 11, 30),
    )
    snapshot = Record(
        NAMES.holdings_snapshot,
        0,
        0,
        customer.encode(),
        json.dumps(row | {"as_of": "2026-10-31"}, ensure_ascii=False).encode(),
    )
    _batch(processor, processor.snapshot_rows([snapshot]))
    catalog = served.bundle.catalog
    balances = {c: float(row[c]) for c in catalog.balance_columns}
    lacking = [
        p
        for p in catalog.names
        if p not in catalog.products_of(catalog.holdings_from_balances(balances))
    ]
    event = {
        "event_id": "e1",
        "customer_id": customer,
        "ts": "2026-11-02T10:00:00+08:00",
        "product": lacking[0],
        "kind": "open",
        "amount": 1000.0,
    }
    _batch(
        processor,
        processor.transactions(
            [
                Record(
                    NAMES.transactions,
                    0,
                    1,
                    customer.encode(),
                    json.dumps(event, ensure_ascii=False).encode(),
                )
            ]
        ),
    )
    alerts = [json.loads(m.value) for m in sender.messages if m.topic == NAMES.cross_sell_alerts]
    assert len(alerts) == 1
    # The alert's offer is the ranker's best for the new holdings.
    expected = served.offers.ranked(
        alerts[0]["segment"], _held(served, row, lacking[0]), _features(served, row), top_k=3
    )
    assert alerts[0]["product"] == served.bundle.items[expected[0].item]
    assert alerts[0]["evidence"]["ranker"] == "blend"
    assert alerts[0]["evidence"]["top_inputs"]


def _held(active: ActiveView, row: dict[str, Any], opened: str) -> int:
    catalog = active.bundle.catalog
    balances = {c: float(row[c]) for c in catalog.balance_columns}
    return catalog.holdings_from_balances(balances) | catalog.mask([opened])


def _features(active: ActiveView, row: dict[str, Any]) -> tuple[float, ...]:
    from rules_store.bundle.schema import encode_profile

    return encode_profile(active.bundle.schema, row)


def test_bad_ranker_names_and_forward_data_say_what_is_wrong(
    tmp_path: Path, trained: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path, out = str(trained["path"]), str(tmp_path / "e")

    def fails_with(extra: list[str], message: str) -> None:
        code, output = run_cli(["evaluate", path, "--out", out, *extra], capsys)
        assert code != 0
        assert message in " ".join(output.split()), output

    fails_with(
        ["--rankers", "popular,knn"], "unknown ranker 'knn'; expected some of popular, rules"
    )
    other = tmp_path / "other.del"
    frame = generate_retail(200, seed=99, dirty_share=0.0)
    write_retail(frame.assign(客户编号="X" + frame["客户编号"]), other, "del")
    fails_with(["--later", str(other)], "none of its 200 customer ids is in INPUT")
    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text(json.dumps({"customer_id": "1", "kind": "credit", "product": "存款"}) + "\n")
    fails_with(["--events", str(quiet)], "no product openings of INPUT's customers")
    alien = tmp_path / "alien.jsonl"
    event = {"customer_id": "1", "kind": "open", "product": "比特币"}
    alien.write_text(json.dumps(event, ensure_ascii=False) + "\n")
    fails_with(["--events", str(alien)], "opening of '比特币', a product outside the catalog")


class _CountingScorer:
    """The index's scorer, counting its scoring calls."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.calls, self.name = scorer, 0, scorer.name

    def scores_of(self, inputs: Inputs, *, lacking_only: bool = False) -> Any:
        self.calls += 1
        return self.scorer.scores_of(inputs, lacking_only=lacking_only)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)


def _stream(trained: dict[str, Any], served: ActiveView) -> tuple[list[Record], list[Record]]:
    """Snapshot rows of 40 customers, then each opens up to 3 products it lacks on one day,
    the customers interleaved: the daily cap (2) and the order within a batch matter."""
    catalog = served.bundle.catalog
    snapshots, opens = [], []
    for i in range(40):
        row = trained["frame"].iloc[i].to_dict()
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k != "persona"}
        customer = str(row[RETAIL_SCHEMA.id_column])
        value = json.dumps(row | {"as_of": "2026-10-31"}, ensure_ascii=False).encode()
        snapshots.append(Record(NAMES.holdings_snapshot, 0, i, customer.encode(), value))
        held = catalog.holdings_from_balances({c: float(row[c]) for c in catalog.balance_columns})
        lacking = [p for p in catalog.names if p not in catalog.products_of(held)]
        for n, product in enumerate(lacking[:3]):
            event = {
                "event_id": f"e{i}-{n}",
                "customer_id": customer,
                "ts": f"2026-11-02T1{n}:00:{i:02d}+08:00",
                "product": product,
                "kind": "open",
                "amount": 1000.0,
            }
            opens.append((n, i, json.dumps(event, ensure_ascii=False).encode(), customer))
    opens.sort()
    records = [
        Record(NAMES.transactions, 0, k, customer.encode(), value)
        for k, (_, _, value, customer) in enumerate(opens)
    ]
    return snapshots, records


def _run(
    served: ActiveView, snapshots: list[Record], records: list[Record], cuts: list[int]
) -> tuple[list[bytes], dict[str, bytes], int]:
    index = OfferIndex(served.bundle)
    counting = _CountingScorer(index.scorer)
    index.scorer = counting  # type: ignore[assignment]
    active = ActiveView(served.version, served.bundle, index)
    table: dict[str, bytes] = {}
    sender = ListSender()
    processor = Processor(
        table,
        sender,
        names=NAMES,
        active=lambda: active,
        policies=Policies(),
        today=lambda: date(2026, 11, 30),
    )
    _batch(processor, processor.snapshot_rows(snapshots))
    bounds = [0, *cuts, len(records)]
    for start, end in pairwise(bounds):
        _batch(processor, processor.transactions(records[start:end]))
    return [m.value for m in sender.messages], dict(table), counting.calls


def test_the_stream_scores_a_batch_at_once_and_alerts_as_one_event_at_a_time(
    trained: dict[str, Any], served: ActiveView
) -> None:
    snapshots, records = _stream(trained, served)
    one_by_one = _run(served, snapshots, records, list(range(1, len(records))))
    whole = _run(served, snapshots, records, [])
    assert whole[2] == 1  # one scoring call for the whole batch
    assert whole[:2] == one_by_one[:2]  # the same alerts, in the same order, and states
    rng = np.random.default_rng(5)
    for _ in range(3):  # a replay after a crash cuts the batches elsewhere
        cuts = sorted(rng.choice(np.arange(1, len(records)), size=4, replace=False).tolist())
        assert _run(served, snapshots, records, cuts)[:2] == one_by_one[:2]
    alerts = [json.loads(v) for v in whole[0] if b'"cross_sell"' in v]
    assert len(alerts) > 40  # most customers got two offers that day, none a third
    per_customer = {a["customer_id"] for a in alerts}
    assert all(sum(a["customer_id"] == c for a in alerts) <= 2 for c in per_customer)
    assert all(a["evidence"]["ranker"] == "blend" for a in alerts)
    assert any(a["evidence"]["top_inputs"] for a in alerts)
