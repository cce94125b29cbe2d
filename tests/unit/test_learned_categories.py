"""Category values not listed in the schema are learned from training data; unseen ones count."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA, load_schema, profile_codes
from rules_store.store.local_store import load_bundle, load_model
from tests.cli import run_cli
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, load_retail, train_retail

FAST = ["--folds", "3", "--trees", "15", "--iterations", "30"]


def _schema_without_values(tmp_path: Path, field: str) -> Path:
    doc = RETAIL_SCHEMA.to_dict()
    for spec in doc["fields"]:
        if spec["name"] == field:
            del spec["values"]
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_category_without_values_learns_them_and_codes_unseen_ones_as_unknown(
    tmp_path: Path,
) -> None:
    schema = load_schema(_schema_without_values(tmp_path, "学历"))
    assert schema.field("学历").values == ()
    assert schema.field("学历").unknown == "code"
    frame = generate_retail(1_500, seed=4, dirty_share=0.0)
    path = tmp_path / "train.csv"
    write_retail(frame, path, "csv")
    bundle = train_retail(path, schema, TrainParams(segments=2)).bundle
    learned = bundle.schema.field("学历").values
    assert learned == tuple(sorted(set(frame["学历"])))
    assert bundle.schema.field("性别").values == ("男", "女")  # listed fields keep their list

    # Scoring: an unseen value neither stops the listed-field policy ("stop") nor is dropped.
    scored = frame.head(50).copy()
    scored.loc[:4, "学历"] = "博士后"
    other = tmp_path / "score.csv"
    write_retail(scored, other, "csv")
    data = load_retail(other, bundle.schema, unknown="stop")
    column = data.feature_names.index("学历")
    assert data.features[:5, column].tolist() == [float(len(learned))] * 5
    assert [(u.column, u.value, u.count) for u in data.report.unknown] == [("学历", "博士后", 5)]
    # The stream encodes the same code and names the field, for the worker's count.
    record = scored.iloc[0].to_dict()
    codes = profile_codes(bundle.schema, record, unknown="stop")
    assert codes.features == tuple(data.features[0])
    assert codes.unseen == ("学历",)
    # A listed field still stops on a value outside its list.
    scored.loc[0, "性别"] = "未知"
    write_retail(scored, other, "csv")
    with pytest.raises(ValueError, match="性别 = '未知'"):
        load_retail(other, bundle.schema, unknown="stop")


def test_cross_sell_counts_unseen_values_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema_path = _schema_without_values(tmp_path, "交易渠道偏好")
    frame = generate_retail(1_200, seed=5, dirty_share=0.0)
    train = tmp_path / "train.csv"
    write_retail(frame, train, "csv")
    code, output = run_cli(
        [
            "train",
            "retail",
            str(train),
            "--out",
            str(tmp_path / "run"),
            "--schema",
            str(schema_path),
        ],
        capsys,
    )
    assert code == 0, output
    assert load_bundle(tmp_path / "run").schema.field("交易渠道偏好").values == tuple(
        sorted(set(frame["交易渠道偏好"]))
    )
    frame.loc[:2, "交易渠道偏好"] = "微信银行"
    write_retail(frame, train, "csv")
    code, output = run_cli(
        ["cross-sell", str(train), str(tmp_path / "offers.csv"), "--model", str(tmp_path / "run")],
        capsys,
    )
    assert code == 0, output
    assert "unseen value 交易渠道偏好 = '微信银行': 3 row(s), coded as 'unknown'" in " ".join(
        output.split()
    )
    offers = pd.read_csv(tmp_path / "offers.csv", dtype={"客户编号": str})
    assert set(frame["客户编号"].head(3)) <= set(offers["客户编号"])  # scored, not dropped


def test_corporate_industries_are_learned_and_unseen_ones_score_as_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "corp.csv"
    code, output = run_cli(
        ["generate", "corporate", "-n", "1500", "--out", str(data), "--seed", "2"], capsys
    )
    assert code == 0, output
    frame = pd.read_csv(data, dtype={"客户编号": str})
    # Another bank's industry names: nothing about them is wrong.
    frame["行业"] = frame["行业"].replace({"信息技术服务业": "信息技术", "其他": "文化娱乐"})
    frame.to_csv(data, index=False)
    code, output = run_cli(
        ["train", "churn", str(data), "--out", str(tmp_path / "run"), *FAST], capsys
    )
    assert code == 0, output
    model = load_model(tmp_path / "run", target="churn")
    industry = next(s for s in model.inputs if s.name == "行业")
    assert industry.learned
    assert industry.values == tuple(sorted(set(frame["行业"])))
    assert "行业=信息技术" in model.columns

    frame.loc[:6, "行业"] = "量子计算"
    frame.to_csv(data, index=False)
    code, output = run_cli(
        ["churn", str(data), str(tmp_path / "out.csv"), "--model", str(tmp_path / "run"), "--all"],
        capsys,
    )
    assert code == 0, output
    assert "unseen value 行业 = '量子计算': 7 row(s)" in " ".join(output.split())
    scored = pd.read_csv(tmp_path / "out.csv", dtype={"客户编号": str})
    assert set(frame["客户编号"].head(7)) <= set(scored["客户编号"])
