"""Corporate snapshots (seed 001, 对公): columns, labels, loading, joining, encoding.

Churn warning: a customer churns when this month's average daily financial assets
(`金融资产月日均`) fell more than 50% against the previous three months'
(`近三个月金融资产月日均`). Potential customers: `月均交易笔数` > 3 or `月均交易金额` >
3,000,000. The label columns, every column whose name contains `日期`, the customer id
and free text (addresses) never become features; rows with a missing value are dropped
and counted, as seed 001 does.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.parquet as pq

from rules_store.bundle.schema import ID_COLUMN, Field, Schema, UnknownPolicy
from rules_store.domain.scoring import InputFeature
from training.encoding import UnknownValue, describe_unknown
from training.loading import FileFormat, InputError, detect_encoding, file_format, read_snapshot

DATE_MARK = "日期"
FIRST_LINES = 3


def _number(name: str) -> Field:
    return Field(name, "number")


_PROFILE = (
    Field(ID_COLUMN, "id"),
    # 行业 lists no values: the model learns them from the training data (one 0/1 column
    # per value seen); an unseen value at scoring gives all zeros and is counted.
    Field("行业", "category", unknown="code"),
    _number("成立年限"),
    _number("注册资本"),
    _number("员工人数"),
    _number("存款月日均"),
    _number("贷款余额"),
    _number("产品持有数"),
)
CHURN_SCHEMA = Schema(
    "corporate_churn",
    (
        *_PROFILE,
        _number("近一年交易天数"),
        Field("开户日期", "text"),
        Field("最近交易日期", "text"),
        _number("金融资产月日均"),
        _number("近三个月金融资产月日均"),
    ),
)
POTENTIAL_SCHEMA = Schema(
    "corporate_potential", (*_PROFILE, _number("月均交易笔数"), _number("月均交易金额"))
)
ADDRESS_COLUMNS = ("注册地址", "经营地址")
RELATED_SCHEMA = Schema(
    "corporate_related", (Field(ID_COLUMN, "id"), *(Field(c, "text") for c in ADDRESS_COLUMNS))
)

Labeller = Callable[[pd.DataFrame], npt.NDArray[np.bool_]]


def label_churn(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Fell more than 50%: current < half of the previous three months' (0 before: no churn).

    >>> label_churn(pd.DataFrame({"金融资产月日均": [40.0, 60.0, 0.0],
    ...                           "近三个月金融资产月日均": [100.0, 100.0, 0.0]})).tolist()
    [True, False, False]
    """
    current = frame["金融资产月日均"].to_numpy(dtype=np.float64)
    before = frame["近三个月金融资产月日均"].to_numpy(dtype=np.float64)
    return np.asarray((before > 0) & (before - current > 0.5 * before), dtype=np.bool_)


def label_potential(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """More than 3 transactions a month on average, or more than 3,000,000 a month."""
    count = frame["月均交易笔数"].to_numpy(dtype=np.float64)
    amount = frame["月均交易金额"].to_numpy(dtype=np.float64)
    return np.asarray((count > 3) | (amount > 3_000_000), dtype=np.bool_)


@dataclass(frozen=True)
class Task:
    """One corporate model: its file layout, label and output column."""

    name: str  # "churn" or "potential"
    schema: Schema
    label_columns: tuple[str, ...]
    labeller: Labeller
    label_text: str
    probability_column: str


CHURN = Task(
    "churn",
    CHURN_SCHEMA,
    ("金融资产月日均", "近三个月金融资产月日均"),
    label_churn,
    "churn: 金融资产月日均 fell more than 50% against 近三个月金融资产月日均",
    "churn_probability",
)
POTENTIAL = Task(
    "potential",
    POTENTIAL_SCHEMA,
    ("月均交易笔数", "月均交易金额"),
    label_potential,
    "potential: 月均交易笔数 > 3 or 月均交易金额 > 3,000,000",
    "potential_probability",
)
TASKS = {task.name: task for task in (CHURN, POTENTIAL)}


def feature_inputs(task: Task) -> tuple[InputFeature, ...]:
    """The model's features: numbers and categories, minus the id, labels, dates and text.
    A category that lists no values gets them from training (`learn_inputs`)."""
    return tuple(
        InputFeature(f.name, "category", f.values, learned=not f.values)
        if f.kind == "category"
        else InputFeature(f.name, "number")
        for f in task.schema.fields
        if f.kind in ("number", "category", "balance")
        and f.name not in task.label_columns
        and DATE_MARK not in f.name
    )


def learn_inputs(
    inputs: tuple[InputFeature, ...], features: pd.DataFrame
) -> tuple[InputFeature, ...]:
    """The inputs with each learned category given the values seen in `features`, sorted."""
    return tuple(
        replace(spec, values=tuple(sorted(set(features[spec.name].astype(str)))))
        if spec.learned and not spec.values
        else spec
        for spec in inputs
    )


def unseen_values(inputs: tuple[InputFeature, ...], data: CorporateData) -> list[UnknownValue]:
    """Category values of `data` the model did not see in training (scored as all zeros)."""
    return _unknown_categories(data.features, inputs, data.lines)


@dataclass
class CorporateReport:
    rows_read: int
    rows_kept: int = 0
    rows_with_missing: int = 0
    missing_by_column: dict[str, int] = field(default_factory=dict)
    unknown: list[UnknownValue] = field(default_factory=list)
    not_features: tuple[str, ...] = ()  # id, labels, dates, addresses
    without_related: int = 0  # potential: rows of file 1 with no row in file 2
    positives: int | None = None


@dataclass(frozen=True)
class CorporateData:
    ids: npt.NDArray[np.object_]
    features: pd.DataFrame  # raw feature values, one column per input, numbers as float
    labels: npt.NDArray[np.bool_] | None  # None when the file has no label columns
    addresses: pd.DataFrame | None  # potential: 注册地址, 经营地址 of each kept row
    report: CorporateReport
    lines: npt.NDArray[np.int64]  # the file line of each kept row


def _header(path: Path, fmt: FileFormat, encoding: str | None) -> list[str] | int | None:
    """Column names of a CSV/Parquet file, the width of a `.del` file's first line."""
    if not path.is_file() or path.stat().st_size == 0:
        return None  # the loader says what is wrong
    if fmt == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError):
            return None
    with path.open(encoding=encoding or detect_encoding(path), newline="") as handle:
        try:
            first = next(csv.reader(handle), [])
        except (UnicodeDecodeError, csv.Error):
            return None
    return [c.strip() for c in first] if fmt == "csv" else len(first)


def _schema_for(
    path: Path, task: Task, fmt: FileFormat, encoding: str | None, *, need_labels: bool
) -> Schema:
    """The task's layout, without the label columns when a file for scoring lacks them."""
    header = _header(path, fmt, encoding)
    without = Schema(
        task.schema.name,
        tuple(f for f in task.schema.fields if f.name not in task.label_columns),
    )
    if isinstance(header, list):
        if ID_COLUMN not in header:
            msg = f"{path}: no {ID_COLUMN} column (customer id); found {header[:8]}"
            raise InputError(msg)
        absent = [c for c in task.label_columns if c not in header]
        if not absent:
            return task.schema
    elif isinstance(header, int) and header == len(without.fields):
        absent = list(task.label_columns)
    else:
        return task.schema
    if need_labels:
        msg = (
            f"{path}: missing label column(s) {absent}; training computes the label from "
            f"them ({task.label_text}). Columns expected: {','.join(task.schema.columns)}"
        )
        raise InputError(msg)
    return without


def _lines(fmt: FileFormat, rows: int) -> npt.NDArray[np.int64]:
    """File line of each row (a CSV's header is line 1)."""
    first = 2 if fmt == "csv" else 1
    return np.arange(first, first + rows, dtype=np.int64)


def _unknown_categories(
    frame: pd.DataFrame, inputs: tuple[InputFeature, ...], lines: npt.NDArray[np.int64]
) -> list[UnknownValue]:
    found = []
    for spec in inputs:
        if spec.kind != "category" or (spec.learned and not spec.values):
            continue  # nothing listed yet: learned from this very data
        text = frame[spec.name].astype("string").str.strip()
        bad = text.notna() & ~text.isin(spec.values)
        for value in sorted(set(text[bad].tolist())):
            rows = np.flatnonzero((text == value).fillna(False).to_numpy())
            found.append(
                UnknownValue(
                    spec.name,
                    value,
                    int(rows.size),
                    tuple(int(x) for x in lines[rows[:FIRST_LINES]]),
                )
            )
    return found


def prepare(
    frame: pd.DataFrame,
    task: Task,
    *,
    source: str,
    lines: npt.NDArray[np.int64],
    unknown: UnknownPolicy,
    with_labels: bool,
    addresses: pd.DataFrame | None = None,
) -> CorporateData:
    """Labels, features and the rows kept; unknown categories stop unless coded."""
    inputs = feature_inputs(task)
    report = CorporateReport(rows_read=len(frame))
    used = [ID_COLUMN, *(s.name for s in inputs)]
    if with_labels:
        used += list(task.label_columns)
    names = {s.name for s in inputs}
    report.not_features = tuple(c for c in frame.columns if c not in names) + (
        ADDRESS_COLUMNS if addresses is not None else ()
    )
    missing = frame[used].isna()
    if addresses is not None:
        missing[list(ADDRESS_COLUMNS)] = addresses[list(ADDRESS_COLUMNS)].isna().to_numpy()
    report.missing_by_column = {str(c): int(n) for c, n in missing.sum().items() if n}
    keep = ~missing.any(axis=1).to_numpy()
    report.rows_with_missing = int((~keep).sum())
    report.unknown = _unknown_categories(frame[keep], inputs, lines[keep])
    if report.unknown and unknown == "stop":
        msg = (
            f"{source}: values outside their field's list (pass --unknown-category code to "
            f"let them through as an unknown category):\n{describe_unknown(report.unknown)}"
        )
        raise InputError(msg)
    report.rows_kept = int(keep.sum())
    if report.rows_kept == 0:
        msg = f"{source}: every row has a missing value; nothing left to use"
        raise InputError(msg)
    kept = frame[keep].reset_index(drop=True)
    features = pd.DataFrame(
        {
            s.name: kept[s.name].astype("string").str.strip().astype(object)
            if s.kind == "category"
            else kept[s.name].astype(np.float64)
            for s in inputs
        }
    )
    labels = task.labeller(kept) if with_labels else None
    if labels is not None:
        report.positives = int(labels.sum())
    return CorporateData(
        ids=kept[ID_COLUMN].astype(str).str.strip().to_numpy(dtype=object),
        features=features,
        labels=labels,
        addresses=None if addresses is None else addresses[keep].reset_index(drop=True),
        report=report,
        lines=lines[keep],
    )


def load_churn(
    path: Path,
    *,
    encoding: str | None = None,
    unknown: UnknownPolicy = "stop",
    need_labels: bool = True,
) -> CorporateData:
    fmt = file_format(path)
    schema = _schema_for(path, CHURN, fmt, encoding, need_labels=need_labels)
    frame = read_snapshot(path, schema, encoding=encoding, fmt=fmt)
    return prepare(
        frame,
        CHURN,
        source=str(path),
        lines=_lines(fmt, len(frame)),
        unknown=unknown,
        with_labels=schema is CHURN.schema,
    )


def load_related(path: Path, *, encoding: str | None = None) -> pd.DataFrame:
    """File 2 of the potential model: 客户编号, 注册地址, 经营地址; one row per customer."""
    fmt = file_format(path)
    header = _header(path, fmt, encoding)
    if isinstance(header, list) and ID_COLUMN not in header:
        msg = (
            f"{path}: no {ID_COLUMN} column; the related data ({','.join(RELATED_SCHEMA.columns)}) "
            f"joins on it. Found {header[:8]}"
        )
        raise InputError(msg)
    frame = read_snapshot(path, RELATED_SCHEMA, encoding=encoding, fmt=fmt)
    frame[ID_COLUMN] = frame[ID_COLUMN].astype("string").str.strip()
    repeated = frame[ID_COLUMN][frame[ID_COLUMN].duplicated()].dropna().unique().tolist()
    if repeated:
        msg = (
            f"{path}: {len(repeated)} {ID_COLUMN} value(s) appear more than once (e.g. "
            f"{repeated[:3]}); the related data must have one row per customer"
        )
        raise InputError(msg)
    return frame


def load_potential(
    path: Path,
    related_path: Path,
    *,
    encoding: str | None = None,
    unknown: UnknownPolicy = "stop",
    need_labels: bool = True,
) -> CorporateData:
    """File 1 joined with file 2 on 客户编号; rows of file 1 without file 2 are counted, dropped."""
    fmt = file_format(path)
    schema = _schema_for(path, POTENTIAL, fmt, encoding, need_labels=need_labels)
    frame = read_snapshot(path, schema, encoding=encoding, fmt=fmt)
    related = load_related(related_path, encoding=encoding)
    frame[ID_COLUMN] = frame[ID_COLUMN].astype("string").str.strip()
    lines = pd.Series(_lines(fmt, len(frame)), name="__line")
    joined = pd.concat([frame, lines], axis=1).merge(related, on=ID_COLUMN, how="inner")
    if joined.empty:
        msg = (
            f"{path} and {related_path}: no {ID_COLUMN} in common; is the second file the "
            "related data of the same customers?"
        )
        raise InputError(msg)
    data = prepare(
        joined.drop(columns=["__line", *ADDRESS_COLUMNS]),
        POTENTIAL,
        source=str(path),
        lines=joined["__line"].to_numpy(dtype=np.int64),
        unknown=unknown,
        with_labels=schema is POTENTIAL.schema,
        addresses=joined[list(ADDRESS_COLUMNS)].astype("string"),
    )
    data.report.rows_read = len(frame)
    data.report.without_related = len(frame) - len(joined)
    return data


def in_region(addresses: pd.DataFrame, region: str) -> npt.NDArray[np.bool_]:
    """Rows whose 注册地址 or 经营地址 contains `region` (plain substring, no pattern)."""
    hit = np.zeros(len(addresses), dtype=np.bool_)
    for column in ADDRESS_COLUMNS:
        hit |= addresses[column].str.contains(region, regex=False).fillna(False).to_numpy(bool)
    return hit


def encode_features(
    inputs: tuple[InputFeature, ...], features: pd.DataFrame
) -> npt.NDArray[np.float64]:
    """The model's input matrix: numbers as they are, one 0/1 column per category value
    (an unknown value: all zeros). The same encoding as `rules_store.domain.scoring.encode_record`."""
    columns: list[npt.NDArray[np.float64]] = []
    for spec in inputs:
        if spec.kind == "number":
            columns.append(features[spec.name].to_numpy(dtype=np.float64))
        else:
            values = features[spec.name].astype(str).to_numpy()
            columns.extend((values == v).astype(np.float64) for v in spec.values)
    return np.column_stack(columns) if columns else np.empty((len(features), 0))
