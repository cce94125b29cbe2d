"""Read customer snapshots: DB2 `.del` exports (no header), CSV (header row) and Parquet.

The fast path is pyarrow's multi-threaded CSV reader with the schema's types. When it
refuses a file, a slow diagnostic pass with Python's csv module finds the exact line,
column and value, so the error says what to fix instead of quoting pyarrow.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rules_store.bundle.schema import Schema
from rules_store.errors import XsellError
from rules_store.store.files import atomic_path

FileFormat = Literal["del", "csv", "parquet"]
MAX_EXAMPLES = 5


class InputError(XsellError, ValueError):
    """An input file cannot be used; the message names the file, line, column and value."""


def file_format(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix in (".del", ".txt"):
        return "del"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    msg = f"{path}: unknown file type {suffix!r}; expected .del (DB2 export), .csv or .parquet"
    raise InputError(msg)


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """UTF-8 (with or without BOM) if the first MiB decodes as UTF-8, else GB18030 (covers GBK)."""
    with path.open("rb") as handle:
        sample = handle.read(sample_bytes)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    msg = f"{path}: neither UTF-8 nor GB18030/GBK text; pass --encoding with the file's encoding"
    raise InputError(msg)


def _arrow_type(kind: str) -> pa.DataType:
    if kind in ("number", "balance"):
        return pa.float64()
    if kind == "category":
        return pa.dictionary(pa.int32(), pa.string())
    return pa.string()


def read_snapshot(
    path: Path, schema: Schema, *, encoding: str | None = None, fmt: FileFormat | None = None
) -> pd.DataFrame:
    """The file's rows with the schema's columns, numbers as float64, categories as Categorical.

    Nulls (empty fields) are kept; validation decides what to do with them.
    """
    if not path.is_file():
        msg = f"{path}: no such file"
        raise InputError(msg)
    fmt = fmt or file_format(path)
    if path.stat().st_size == 0:
        msg = f"{path}: the file is empty (0 bytes)"
        raise InputError(msg)
    if fmt == "parquet":
        frame = _read_parquet(path, schema)
    else:
        encoding = encoding or detect_encoding(path)
        frame = _read_text(path, schema, fmt, encoding)
    if frame.empty:
        msg = f"{path}: no data rows"
        raise InputError(msg)
    return frame


def _read_text(path: Path, schema: Schema, fmt: FileFormat, encoding: str) -> pd.DataFrame:
    header = fmt == "csv"
    wrong_width: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        wrong_width.append(row.text)
        return "skip"

    types = {f.name: _arrow_type(f.kind) for f in schema.fields}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=None if header else list(schema.columns), encoding=encoding
            ),
            # A blank line stays a row (of missing values, dropped and counted later):
            # skipping it would shift every line number reported after it.
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(schema.columns),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        raise _diagnose(path, schema, fmt, encoding, exc) from exc
    if wrong_width:
        raise _diagnose(path, schema, fmt, encoding, None)
    return table.to_pandas()


def _read_parquet(path: Path, schema: Schema) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        msg = f"{path}: not a readable Parquet file ({exc})"
        raise InputError(msg) from exc
    missing = [name for name in schema.columns if name not in table.column_names]
    if missing:
        msg = f"{path}: missing columns {missing} (schema {schema.name!r})"
        raise InputError(msg)
    columns = {}
    for f in schema.fields:
        try:
            column = table.column(f.name)
            if f.kind == "category":  # 0/1 flags may be stored as integers
                columns[f.name] = column.cast(pa.string()).dictionary_encode()
            else:
                columns[f.name] = column.cast(_arrow_type(f.kind))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            msg = f"{path}: column {f.name!r} cannot be read as {f.kind} ({exc})"
            raise InputError(msg) from exc
    return pa.table(columns).to_pandas()


def _rows(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        for record in reader:
            yield reader.line_num, record


def _diagnose(
    path: Path, schema: Schema, fmt: FileFormat, encoding: str, cause: BaseException | None
) -> InputError:
    """Find the first offending lines with the slow, exact reader and say what is wrong."""
    problems: list[str] = []  # the first MAX_EXAMPLES, as examples
    bad_lines = 0
    try:
        rows = _rows(path, encoding)
        names = list(schema.columns)
        if fmt == "csv":
            _, header = next(rows, (0, []))
            missing = [name for name in names if name not in header]
            if missing:
                return InputError(
                    f"{path}: header lacks columns {missing} (schema {schema.name!r}); "
                    f"found {header[:8]}{'…' if len(header) > 8 else ''}"
                )
            positions = [header.index(name) for name in names]
            width = len(header)
        else:
            positions, width = list(range(len(names))), len(names)
        numeric = [
            (i, f.name)
            for i, f in zip(positions, schema.fields, strict=True)
            if f.kind in ("number", "balance")
        ]
        for line, record in rows:
            if not record:
                continue  # a blank line: the fast path reads it as a row of missing values
            if len(record) != width:
                found = [f"line {line}: {len(record)} columns, expected {width}"]
            else:
                found = [
                    f"line {line}, column {name!r}: {record[i]!r} is not a number"
                    for i, name in numeric
                    if record[i] and not _is_number(record[i])
                ]
            if found:  # count every bad line, keep the first few as examples
                bad_lines += 1
                problems += found[: MAX_EXAMPLES - len(problems)]
    except UnicodeDecodeError as exc:
        return InputError(
            f"{path}: cannot be decoded as {encoding} at byte {exc.start}; pass --encoding "
            "(utf-8, gb18030 or gbk)"
        )
    if not problems:
        return InputError(f"{path}: unreadable as {fmt} ({cause})")
    more = f" (first {len(problems)} problems shown)" if bad_lines > len(problems) else ""
    return InputError(f"{path}: {bad_lines} bad line(s){more}:\n  " + "\n  ".join(problems))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_headed(path: Path, encoding: str | None) -> pd.DataFrame:
    """A CSV (with a header row) or Parquet table, all text, with at least one row."""
    fmt = file_format(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise InputError(msg)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            text = path.read_bytes().decode(encoding or detect_encoding(path))
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:
        msg = f"{path}: cannot be decoded as {exc.encoding} at byte {exc.start}; pass --encoding"
        raise InputError(msg) from exc
    except (pd.errors.EmptyDataError, pd.errors.ParserError, pa.ArrowInvalid, OSError) as exc:
        msg = f"{path}: not a readable table with a header row ({exc})"
        raise InputError(msg) from exc
    if frame.empty:
        msg = f"{path}: no data rows"
        raise InputError(msg)
    return frame.astype(str)


def read_item_table(path: Path, *, encoding: str | None = None) -> pd.DataFrame:
    """A 0/1 (or t/f, true/false) holdings table with a header, for `xsell mine`.

    Non-item columns (ids, text) are dropped; every remaining column must be boolean-like.
    """
    frame = _read_headed(path, encoding)
    truthy = {"1", "t", "true", "y", "yes", "1.0"}
    falsy = {"0", "f", "false", "n", "no", "0.0"}
    items = {}
    for column in frame.columns:
        values = frame[column].astype(str).str.strip().str.lower()
        if values.isin(truthy | falsy).all():
            items[column] = values.isin(truthy)
    if not items:
        msg = f"{path}: no column holds only 0/1 or t/f values; nothing to mine"
        raise InputError(msg)
    return pd.DataFrame(items)


MONTH_COLUMN, AVERAGE_COLUMN = "月份", "金融资产月日均"


def read_months_table(
    path: Path, id_column: str, *, encoding: str | None = None
) -> dict[str, dict[str, float]]:
    """A months table for the churn test: one row per customer and month, with columns
    `id_column`, 月份 (YYYY-MM) and 金融资产月日均 (average daily financial assets)."""
    frame = _read_headed(path, encoding)
    missing = [c for c in (id_column, MONTH_COLUMN, AVERAGE_COLUMN) if c not in frame.columns]
    if missing:
        msg = (
            f"{path}: missing column(s) {missing}; a months table has the header "
            f"{id_column},{MONTH_COLUMN},{AVERAGE_COLUMN}"
        )
        raise InputError(msg)
    months: dict[str, dict[str, float]] = {}
    for line, (customer, month, average) in enumerate(
        frame[[id_column, MONTH_COLUMN, AVERAGE_COLUMN]].itertuples(index=False), start=2
    ):
        where = f"{path}:{line}"
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month.strip()):
            msg = f"{where}: {MONTH_COLUMN} {month!r} is not a month like 2026-10"
            raise InputError(msg)
        if not _is_number(average) or not math.isfinite(float(average)) or float(average) < 0:
            msg = f"{where}: {AVERAGE_COLUMN} {average!r} is not a number >= 0"
            raise InputError(msg)
        history = months.setdefault(customer.strip(), {})
        if month.strip() in history:
            msg = f"{where}: customer {customer} has month {month} twice"
            raise InputError(msg)
        history[month.strip()] = float(average)
    return months


def write_months_table(months: dict[str, dict[str, float]], path: Path, id_column: str) -> None:
    rows = [(c, m, v) for c, history in months.items() for m, v in sorted(history.items())]
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=[id_column, MONTH_COLUMN, AVERAGE_COLUMN]).to_csv(
            tmp, index=False
        )
