"""Another bank's catalog end to end: 24 products with ASCII columns, from the schema file
through training, the store, a worker, the API and the batch commands; then a bundle with
another catalog activated under the same worker and the customers' stored states."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rules_store.bundle.schema import encode_profile, load_schema
from rules_store.settings import Settings
from rules_store.store.redis_store import BundleStore, open_redis
from streams.kafka.clients import ensure_topics
from streams.kafka.topics import TopicNames
from tests.cli import run_cli
from tests.integration.reading import read_json
from tests.integration.web_engine import Engine, WorkerProcess, request, worker_env
from xsell.embedded import EmbeddedStack

N_PRODUCTS = 24
DAY = "2026-11-23T10:00:00+08:00"
WAIT_S = 120


def _products() -> list[dict[str, Any]]:
    products = []
    for i in range(N_PRODUCTS):
        balances = [f"bal_{i:02d}"] + ([f"bal_{i:02d}_b"] if i % 6 == 5 else [])
        products.append(
            {
                "name": f"prod_{i:02d}",
                "balances": balances,
                "financial_asset": i % 8 != 7,  # every eighth is a liability
                "value": 1.0 + (i % 3),
            }
        )
    return products


def _schema_doc(products: list[dict[str, Any]]) -> dict[str, Any]:
    balance_fields = [
        {"name": column, "kind": "balance"} for p in products for column in p["balances"]
    ]
    return {
        "name": "bank_b",
        "id_column": "cust_id",
        "fields": [
            {"name": "cust_id", "kind": "id"},
            {"name": "age", "kind": "number"},
            {"name": "tier", "kind": "category"},  # values learned from the data
            {"name": "risk", "kind": "category", "values": ["low", "mid", "high"]},
            *balance_fields,
        ],
        "products": products,
    }


def _customers(n: int, seed: int) -> pd.DataFrame:
    """Holdings with a planted rule: prod_00 and prod_01 together bring prod_02 (80%)."""
    rng = np.random.default_rng(seed)
    held = rng.random((n, N_PRODUCTS)) < 0.25
    both = held[:, 0] & held[:, 1]
    held[:, 2] = np.where(both, rng.random(n) < 0.8, rng.random(n) < 0.1)
    frame = pd.DataFrame(
        {
            "cust_id": [f"C{i:06d}" for i in range(n)],
            "age": rng.integers(18, 80, n),
            "tier": rng.choice(["gold", "silver", "bronze"], n),
            "risk": rng.choice(["low", "mid", "high"], n),
        }
    )
    for p in _products():
        i = int(p["name"][-2:])
        amount = np.round(rng.lognormal(9, 1, n), 2)
        frame[p["balances"][0]] = np.where(held[:, i], amount, 0.0)
        for extra in p["balances"][1:]:
            frame[extra] = 0.0
    return frame


def _train_and_activate(
    data: Path, schema: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The rules ranker: this test pins the catalog's path, and its planted rule's offers.
    args = ["train", "retail", str(data), "--out", str(out), "--schema", str(schema)]
    args += ["--rankers", "rules", "--segments", "2", "--publish", "--activate"]
    code, output = run_cli(args, capsys)
    assert code == 0, output


def _wait(what: str, check: Any, worker: WorkerProcess) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {WAIT_S}s:\n{worker.log_tail()}")


def _customer(worker: WorkerProcess, customer: str) -> dict[str, Any] | None:
    reply = request(f"{worker.url}/customers/{customer}")
    return reply.json() if reply.status == 200 else None


@pytest.mark.timeout(600)
def test_a_24_product_ascii_catalog_runs_end_to_end_and_survives_a_catalog_change(
    stack: EmbeddedStack,
    isolated: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = isolated
    settings: Settings = stack.settings.model_copy(
        update={"topic_prefix": prefix, "redis_key_prefix": prefix}
    )
    names = TopicNames(prefix)
    schema_path = tmp_path / "bank_b.json"
    schema_path.write_text(json.dumps(_schema_doc(_products())), encoding="utf-8")
    data = _customers(3_000, seed=1)
    data_path = tmp_path / "customers.csv"
    data.to_csv(data_path, index=False)

    # Train -> publish -> activate, with the bank's own schema file.
    _train_and_activate(data_path, schema_path, tmp_path / "run", capsys)
    store = BundleStore(open_redis(settings, stack.endpoints), prefix)
    version, bundle = store.load("active")
    assert bundle.items == tuple(f"prod_{i:02d}" for i in range(N_PRODUCTS))
    assert bundle.schema.field("tier").values == ("bronze", "gold", "silver")
    ensure_topics(settings, stack.endpoints, names.all())

    # Without Thompson's exploration and before any outcome, the stream's offers are the bundle's.
    env = worker_env(stack, prefix) | {"XSELL_THOMPSON": "false"}
    worker = WorkerProcess(env, tmp_path / "worker.log")
    engine = Engine(settings, stack, names, bundle, version, [worker], [])
    # Customers holding prod_00 but neither prod_01 nor prod_02: a credit to prod_01
    # makes the planted rule's antecedents complete.
    rows = data[(data["bal_00"] > 0) & (data["bal_01"] == 0) & (data["bal_02"] == 0)]
    rows = rows.head(12).to_dict("records")
    try:
        worker.start()
        engine.wait_for_assignment()
        engine.send(names.holdings_snapshot, [(r["cust_id"], json.dumps(r).encode()) for r in rows])
        for row in rows:
            _wait(
                f"customer {row['cust_id']} loaded",
                lambda customer=row["cust_id"]: _customer(worker, customer),
                worker,
            )
        engine.send_transactions(
            [
                {
                    "event_id": f"x{i}",
                    "customer_id": row["cust_id"],
                    "ts": DAY,
                    "product": "prod_01",
                    "kind": "credit",
                    "amount": 500.0,
                    "branch_id": "b7",
                }
                for i, row in enumerate(rows)
            ]
        )
        alerts = read_json(settings, stack.endpoints, names.cross_sell_alerts, want=len(rows))

        # The alerts name this catalog's products, as the bundle recommends them.
        catalog = bundle.catalog
        assert alerts, worker.log_tail()
        by_customer = {a["customer_id"]: a for a in alerts}
        for row in rows:
            held = catalog.holdings_from_balances(row) | catalog.mask(["prod_01"])
            segment = bundle.segment_model.assign_segment(encode_profile(bundle.schema, row))
            expected = bundle.recommend(held, segment)
            alert = by_customer.get(row["cust_id"])
            assert alert is not None, worker.log_tail()
            assert alert["product"] == bundle.items[expected[0].item]
            assert alert["product"] in catalog.names
        assert any(a["product"] == "prod_02" for a in alerts)  # the planted rule
        first = rows[0]["cust_id"]
        view = _customer(worker, first)
        assert view is not None
        assert {"prod_00", "prod_01"} <= set(view["holdings"]["products"])
        assert all(o["product"] in catalog.names for o in view["offers"])
        assert view["bundle_version"] == version

        # Batch commands with the same bundle: the same catalog, the same best offers.
        code, output = run_cli(
            ["cross-sell", str(data_path), str(tmp_path / "offers.csv"), "--bundle", "active"],
            capsys,
        )
        assert code == 0, output
        offers = pd.read_csv(tmp_path / "offers.csv", dtype={"cust_id": str})
        assert set(offers["product"]) <= set(catalog.names)
        best = offers[offers["rank"] == 1].set_index("cust_id")
        for row in data.head(50).to_dict("records"):
            held = catalog.holdings_from_balances(row)
            segment = bundle.segment_model.assign_segment(encode_profile(bundle.schema, row))
            assert (
                best.loc[row["cust_id"], "product"]
                == bundle.items[bundle.recommend(held, segment)[0].item]
            )
        code, output = run_cli(
            ["product-mining", str(data_path), str(tmp_path / "targets.csv"), "--bundle", "active"],
            capsys,
        )
        assert code == 0, output
        targets = pd.read_csv(tmp_path / "targets.csv", dtype={"cust_id": str})
        assert set(targets["product"]) <= set(catalog.names)
        assert "prod_02" in set(targets["product"])

        # Another catalog: prod_00 dropped, prod_new added. The stored states stay readable.
        products = [p for p in _products() if p["name"] != "prod_00"]
        products.append({"name": "prod_new", "balances": ["bal_new"], "financial_asset": True})
        doc = _schema_doc(products)
        doc["fields"].append({"name": "bal_00", "kind": "balance"})  # still in the files
        second_path = tmp_path / "bank_b2.json"
        second_path.write_text(json.dumps(doc), encoding="utf-8")
        second_data = data.assign(bal_new=0.0)
        second_data_path = tmp_path / "customers2.csv"
        second_data.to_csv(second_data_path, index=False)
        assert "prod_new" in load_schema(second_path).products.names
        _train_and_activate(second_data_path, second_path, tmp_path / "run2", capsys)
        second_version, _ = store.load("active")
        _wait(
            "the worker serving the second bundle",
            lambda: (_customer(worker, first) or {}).get("bundle_version") == second_version,
            worker,
        )
        engine.send_transactions(
            [
                {"event_id": "y1", "customer_id": first, "ts": DAY, "product": "prod_new",
                 "kind": "credit", "amount": 70.0},
                {"event_id": "y2", "customer_id": first, "ts": DAY, "product": "prod_00",
                 "kind": "credit", "amount": 70.0},
            ]
        )  # fmt: skip
        view = _wait(
            "the new product held",
            lambda: (
                v
                if (v := _customer(worker, first)) and "prod_new" in v["holdings"]["products"]
                else None
            ),
            worker,
        )
        dead = read_json(settings, stack.endpoints, names.dead_letters, want=1)
    finally:
        worker.stop()
    assert "prod_00" not in view["holdings"]["products"]  # dropped: ignored ...
    assert view["holdings"]["balances"]["prod_00"] == rows[0]["bal_00"]  # ... but kept
    assert view["holdings"]["balances"]["prod_new"] == 70.0  # new: started empty
    assert "prod_01" in view["holdings"]["products"]
    assert [d["reason"] for d in dead] == [
        f"unknown product 'prod_00'; expected one of {[p['name'] for p in products]}"
    ]
