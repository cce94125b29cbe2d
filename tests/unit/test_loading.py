"""Reading the bank's files, and the errors a wrong file gets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rules_store.bundle.schema import RETAIL_SCHEMA, SchemaError, encode_profile, load_schema
from training.generate import generate_retail, write_retail
from training.loading import InputError, detect_encoding, read_item_table, read_snapshot
from training.retail import load_retail


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_retail(300, seed=5, dirty_share=0.0)


def _write(tmp_path: Path, frame: pd.DataFrame, name: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    write_retail(
        frame, path, path.suffix.lstrip(".") if path.suffix != ".del" else "del", encoding=encoding
    )  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("a.del", "utf-8"), ("a.del", "gb18030"), ("a.csv", "utf-8"), ("a.parquet", "utf-8")],
)
def test_every_format_and_encoding_reads_the_same_customers(
    tmp_path: Path, customers: pd.DataFrame, name: str, encoding: str
) -> None:
    path = _write(tmp_path, customers, name, encoding)
    data = load_retail(path, RETAIL_SCHEMA)
    assert list(data.ids) == customers["客户编号"].tolist()
    reference = load_retail(_write(tmp_path, customers, "ref.del"), RETAIL_SCHEMA)
    assert np.array_equal(data.features, reference.features)
    assert np.array_equal(data.masks, reference.masks)


def test_gb18030_is_detected_and_utf8_preferred(tmp_path: Path, customers: pd.DataFrame) -> None:
    assert detect_encoding(_write(tmp_path, customers, "g.del", "gb18030")) == "gb18030"
    assert detect_encoding(_write(tmp_path, customers, "u.del")) == "utf-8"


def test_categories_are_encoded_by_their_index_in_the_declared_list(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    data = load_retail(_write(tmp_path, customers, "c.del"), RETAIL_SCHEMA)
    risk = data.feature_names.index("风险评级")
    expected = customers["风险评级"].map(RETAIL_SCHEMA.field("风险评级").values.index)
    assert data.features[:, risk].tolist() == expected.astype(float).tolist()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_wrong_column_count_names_the_lines(tmp_path: Path, customers: pd.DataFrame) -> None:
    path = _write(tmp_path, customers, "w.del")
    lines = _lines(path)
    lines[4] += ',"extra"'
    lines[9] = lines[9].rsplit(",", 2)[0]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_snapshot(path, RETAIL_SCHEMA)
    message = str(caught.value)
    assert str(path) in message
    assert "line 5: 40 columns, expected 39" in message
    assert "line 10: 37 columns, expected 39" in message


def test_non_numeric_balance_names_line_column_and_value(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    path = _write(tmp_path, customers, "n.del")
    lines = _lines(path)
    fields = lines[6].split(",")
    fields[RETAIL_SCHEMA.columns.index("国债余额")] = "12O.5"
    lines[6] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 7, column '国债余额': '12O.5' is not a number"):
        read_snapshot(path, RETAIL_SCHEMA)


def test_the_bad_line_count_is_every_bad_line_not_just_the_examples_shown(
    tmp_path: Path,
) -> None:
    frame = generate_retail(600, seed=6, dirty_share=0.0)
    path = _write(tmp_path, frame, "many.del")
    lines = _lines(path)
    column = RETAIL_SCHEMA.columns.index("国债余额")
    for n in range(500):  # two bad numbers on each of 500 lines: still 500 lines
        fields = lines[n].split(",")
        fields[column] = fields[column + 1] = "x"
        lines[n] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_snapshot(path, RETAIL_SCHEMA)
    message = str(caught.value)
    assert "500 bad line(s)" in message
    assert "line 1, column '国债余额': 'x' is not a number" in message
    assert len(message.splitlines()) == 1 + 5  # the count, then the first few examples


def test_unknown_categories_are_counted_with_first_lines_or_coded(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    frame = customers.copy()
    frame.loc[[3, 8, 20], "风险评级"] = "超高风险"
    path = _write(tmp_path, frame, "u.del")
    with pytest.raises(InputError) as caught:
        load_retail(path, RETAIL_SCHEMA)
    assert "风险评级 = '超高风险': 3 row(s), first at line(s) 4, 9, 21" in str(caught.value)
    assert "--unknown-category code" in str(caught.value)
    data = load_retail(path, RETAIL_SCHEMA, unknown="code")
    risk = data.feature_names.index("风险评级")
    assert data.features[[3, 8, 20], risk].tolist() == [5.0, 5.0, 5.0]  # reserved: len(values)
    assert [(u.value, u.count) for u in data.report.unknown] == [("超高风险", 3)]


def test_rows_with_missing_values_are_dropped_and_counted_or_imputed(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    frame = customers.astype({"年龄": object, "学历": object})
    frame.loc[[1, 2], "年龄"] = None
    frame.loc[[2, 5], "学历"] = None
    path = _write(tmp_path, frame, "m.del")
    dropped = load_retail(path, RETAIL_SCHEMA)
    assert dropped.report.rows_with_missing == 3
    assert dropped.report.missing_by_column == {"年龄": 2, "学历": 2}
    assert len(dropped.ids) == len(customers) - 3
    assert 2 not in dropped.lines - 1
    imputed = load_retail(path, RETAIL_SCHEMA, missing="impute")
    assert len(imputed.ids) == len(customers)
    age = imputed.feature_names.index("年龄")
    assert imputed.features[1, age] == np.median(customers["年龄"].drop([1, 2]))


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"", "e.del", "empty"),
        (b"\n", "n.csv", "no data rows|header lacks"),
        (b"\xff\xfe\x00garbage\x80\x81", "b.del", "UTF-8 nor GB18030"),
        (b"a,b\n1,2\n", "x.xlsx", "unknown file type '.xlsx'"),
        (b"PAR1 not really", "p.parquet", "not a readable Parquet file"),
        (b"id,age\n1,2\n", "h.csv", "header lacks columns"),
    ],
)
def test_wrong_files_get_a_clear_error(
    tmp_path: Path, content: bytes, name: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected):
        read_snapshot(path, RETAIL_SCHEMA)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_snapshot(tmp_path / "nope.del", RETAIL_SCHEMA)


def test_a_user_schema_file_renames_reorders_and_changes_value_lists(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    schema = RETAIL_SCHEMA.to_dict()
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "交易渠道偏好"]
    for f in schema["fields"]:
        if f["name"] == "性别":
            f["values"] = ["女", "男"]  # the bank codes women first
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    user = load_schema(schema_path)
    path = tmp_path / "u.csv"
    customers[list(user.columns)].to_csv(path, index=False)
    data = load_retail(path, user)
    assert "交易渠道偏好" not in data.feature_names
    gender = data.feature_names.index("性别")
    assert data.features[:, gender].tolist() == (customers["性别"] == "男").astype(float).tolist()


def test_a_malformed_schema_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        '{"fields": [{"name": "客户编号", "kind": "id"}, {"name": "x", "kind": "colour"}]}',
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match="kind 'colour'"):
        load_schema(path)
    path.write_text('{"fields": [{"name": "x", "kind": "category", "colour": 1}]}', "utf-8")
    with pytest.raises(SchemaError, match=r"field #0 \('x'\): unknown key\(s\) \['colour'\]"):
        load_schema(path)


def test_a_schema_without_a_products_balance_column_is_refused_naming_both(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        SchemaError, match="product '国债' has balance column '国债余额', which is not"
    ):
        load_schema_from(
            tmp_path, [f for f in RETAIL_SCHEMA.to_dict()["fields"] if f["name"] != "国债余额"]
        )


def load_schema_from(tmp_path: Path, fields: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    path = tmp_path / "schema.json"
    path.write_text(
        json.dumps({"name": "custom", "fields": fields}, ensure_ascii=False), encoding="utf-8"
    )
    return load_schema(path)


def _write_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    return path


def test_item_tables_accept_0_1_and_t_f_and_ignore_id_columns(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,deposit,fund,name\nc1,1,t,Ann\nc2,0,f,Bo\n", encoding="utf-8")
    table = read_item_table(path)
    assert list(table.columns) == ["deposit", "fund"]
    assert table.to_numpy().tolist() == [[True, True], [False, False]]


def test_line_numbers_stay_right_after_a_blank_line(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    path = _write(tmp_path, customers, "blank.del")
    lines = _lines(path)
    lines.insert(2, "")
    lines[6] = lines[6].replace('"男"', '"M"').replace('"女"', '"M"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"性别 = 'M': 1 row\(s\), first at line\(s\) 7"):
        load_retail(path, RETAIL_SCHEMA)
    data = load_retail(path, RETAIL_SCHEMA, unknown="code")
    assert data.report.rows_with_missing == 1  # the blank line
    assert 3 not in data.lines


def test_category_values_padded_with_blanks_are_recognized(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    frame = customers.copy()
    frame["风险评级"] = frame["风险评级"] + "  "  # DB2 CHAR padding
    data = load_retail(_write(tmp_path, frame, "pad.del"), RETAIL_SCHEMA)
    assert data.report.unknown == []


def test_a_category_with_hundreds_of_values_is_encoded(tmp_path: Path) -> None:
    branches = [f"branch-{i:03d}" for i in range(300)]
    schema = load_schema_from(
        tmp_path,
        [
            *RETAIL_SCHEMA.to_dict()["fields"],
            {"name": "网点", "kind": "category", "values": branches},
        ],
    )
    frame = generate_retail(50, seed=1, dirty_share=0.0)
    frame["网点"] = [branches[i * 5] for i in range(50)]
    data = load_retail(_write_csv(tmp_path, frame[list(schema.columns)]), schema)
    column = data.feature_names.index("网点")
    assert data.features[:, column].tolist() == [float(i * 5) for i in range(50)]


def test_one_customers_encoding_equals_the_batch_encoding(
    tmp_path: Path, customers: pd.DataFrame
) -> None:
    data = load_retail(_write(tmp_path, customers, "e.del"), RETAIL_SCHEMA)
    records = customers.to_dict("records")
    for i in range(0, len(records), 7):
        record = records[i]
        record["村民"] = float(record["村民"])  # JSON may carry flags as numbers
        assert encode_profile(RETAIL_SCHEMA, record) == tuple(data.features[i])


def test_one_customers_encoding_refuses_unknown_values_unless_coded() -> None:
    record = generate_retail(1, seed=2, dirty_share=0.0).to_dict("records")[0]
    record["学历"] = "博士后"
    with pytest.raises(SchemaError, match="'学历': '博士后' is not one of"):
        encode_profile(RETAIL_SCHEMA, record)
    assert encode_profile(RETAIL_SCHEMA, record, unknown="code")[3] == 5.0
    record["年龄"] = "old"
    with pytest.raises(SchemaError, match="'年龄' must be a number"):
        encode_profile(RETAIL_SCHEMA, record, unknown="code")
