"""Validate and encode a retail snapshot: unknown categories, missing values, codes, holdings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules_store.bundle.schema import Field, Schema, UnknownPolicy
from rules_store.domain.catalog import Catalog
from training.loading import InputError

MissingPolicy = Literal["drop", "impute"]
FIRST_LINES = 3


@dataclass(frozen=True)
class UnknownValue:
    column: str
    value: str
    count: int
    first_lines: tuple[int, ...]


@dataclass
class PrepReport:
    rows_read: int
    rows_kept: int = 0
    missing_by_column: dict[str, int] = field(default_factory=dict)
    rows_with_missing: int = 0
    missing_policy: MissingPolicy = "drop"
    unknown: list[UnknownValue] = field(default_factory=list)
    unknown_policy: UnknownPolicy = "stop"


@dataclass(frozen=True)
class RetailData:
    ids: npt.NDArray[np.object_]
    features: npt.NDArray[np.float64]  # rows x segmentation fields, categories as codes
    masks: npt.NDArray[np.int64]  # held products, catalog bit order
    assets: npt.NDArray[np.float64]  # financial assets: the financial products' balances summed
    lines: npt.NDArray[np.int64]  # where each kept row came from in the file
    feature_names: tuple[str, ...]
    report: PrepReport
    schema: Schema  # the input schema with the values learned for unlisted categories


def _category_codes(column: pd.Series, spec: Field) -> npt.NDArray[np.int16]:
    """Index of each value in the field's declared list; -1 for unknown, -2 for missing.

    Values are compared without surrounding blanks: DB2 pads CHAR columns.
    """
    categorical = (
        column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    )
    seen = [str(v).strip() for v in categorical.cat.categories]
    lookup = np.array(
        # pandas gives a missing value the category code -1, which indexes the last slot.
        [spec.values.index(v) if v in spec.values else -1 for v in seen] + [-2],
        dtype=np.int16,
    )
    codes: npt.NDArray[np.int16] = lookup[categorical.cat.codes.to_numpy()]
    return codes


def learn_values(frame: pd.DataFrame, schema: Schema) -> Schema:
    """The schema with each category field that lists no values given the values seen in
    `frame`, sorted (their codes in that order). Blanks around a value are ignored."""
    learned = {}
    for spec in schema.segment_fields:
        if spec.kind == "category" and not spec.values:
            seen = frame[spec.name].dropna().astype(str).str.strip()
            learned[spec.name] = tuple(sorted(set(seen[seen != ""].tolist())))
    return schema.with_values(learned) if learned else schema


def _unknown_values(
    column: pd.Series, codes: npt.NDArray[np.int16], lines: npt.NDArray[np.int64], name: str
) -> list[UnknownValue]:
    rows = np.flatnonzero(codes == -1)
    if rows.size == 0:
        return []
    values = column.to_numpy()[rows].astype(str)
    found = []
    for value in sorted(set(values.tolist())):
        where = rows[values == value]
        found.append(
            UnknownValue(
                name, value, int(where.size), tuple(int(x) for x in lines[where[:FIRST_LINES]])
            )
        )
    return found


def describe_unknown(unknown: list[UnknownValue]) -> str:
    return "\n".join(
        f"  {u.column} = {u.value!r}: {u.count} row(s), first at line(s) {', '.join(map(str, u.first_lines))}"
        for u in unknown
    )


def prepare_retail(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    source: str,
    first_line: int = 1,
    unknown: UnknownPolicy = "stop",
    missing: MissingPolicy = "drop",
) -> RetailData:
    """Encode the segmentation fields and derive holdings; report what was dropped or coded.

    A category field that lists no values learns them from `frame` first. Unknown
    category values stop the run (listing field, value, count and first lines) unless
    the field's policy, or else `unknown`, is "code", which encodes them as a reserved
    code, len(values), and reports them.
    Rows with missing values are dropped (as seed 001 does) or, with `missing="impute"`,
    filled: numbers by the median, categories by the most frequent code, balances by 0.
    """
    schema = learn_values(frame, schema)
    catalog = schema.products  # its balance columns are fields: the schema checked them
    report = PrepReport(rows_read=len(frame), missing_policy=missing, unknown_policy=unknown)
    lines = np.arange(first_line, first_line + len(frame), dtype=np.int64)
    features = schema.segment_fields
    missing_rows = frame[schema.id_column].isna().to_numpy().copy()

    # First pass, column by column: codes, unknown values, missing values, imputation.
    columns: list[npt.NDArray[np.float64]] = []
    for spec in features:
        column = frame[spec.name]
        if spec.kind == "category":
            codes = _category_codes(column, spec)
            report.unknown.extend(_unknown_values(column, codes, lines, spec.name))
            is_missing = codes == -2
            # Unknown values get the reserved code len(values); missing ones NaN.
            as_float = np.array(
                [*range(len(spec.values)), np.nan, len(spec.values)], dtype=np.float64
            )
            values = as_float[codes]
        else:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            is_missing = np.isnan(values)
        _note_missing(report, spec.name, is_missing)
        if is_missing.any() and missing == "impute":
            present = values[~is_missing]
            if spec.kind == "category":
                fill = (
                    float(np.bincount(present.astype(np.int64)).argmax()) if present.size else 0.0
                )
            else:
                fill = float(np.median(present)) if present.size else 0.0
            values = np.where(is_missing, fill, values)
        elif missing == "drop":
            missing_rows |= is_missing
        columns.append(values)

    balances = {}
    for name in catalog.balance_columns:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        is_missing = np.isnan(values)
        _note_missing(report, name, is_missing)
        if missing == "drop":
            missing_rows |= is_missing
        balances[name] = np.where(is_missing, 0.0, values)

    stopping = [u for u in report.unknown if (schema.field(u.column).unknown or unknown) == "stop"]
    if stopping:
        msg = (
            f"{source}: values outside their field's list (pass --unknown-category code to "
            f"encode them as a reserved 'unknown' code instead):\n{describe_unknown(stopping)}"
        )
        raise InputError(msg)

    keep = ~missing_rows
    report.rows_with_missing = int(missing_rows.sum())
    report.rows_kept = int(keep.sum())
    if report.rows_kept == 0:
        msg = f"{source}: every row has a missing value; nothing left to train on (try --missing impute)"
        raise InputError(msg)
    # Second pass: only kept rows go into the (large) feature matrix, column-major so
    # that each column is one contiguous write.
    rows = np.flatnonzero(keep)
    matrix = np.empty((report.rows_kept, len(features)), dtype=np.float64, order="F")
    for j, values in enumerate(columns):
        np.take(values, rows, out=matrix[:, j])
    return RetailData(
        ids=frame[schema.id_column].to_numpy()[rows],
        features=matrix,
        masks=catalog.holdings_from_balances({k: v[rows] for k, v in balances.items()}),
        assets=_financial_assets(catalog, {k: v[rows] for k, v in balances.items()}),
        lines=lines[rows],
        feature_names=tuple(f.name for f in features),
        report=report,
        schema=schema,
    )


def _financial_assets(
    catalog: Catalog, balances: Mapping[str, npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64]:
    # Summed in the stream's order (each product's columns, then the products), so the
    # customer value sees the same float in both.
    total = np.zeros(len(next(iter(balances.values()))) if balances else 0)
    for product in catalog.products:
        if product.financial_asset:
            product_total = np.zeros_like(total)
            for column in product.balances:
                product_total = product_total + balances[column]
            total = total + product_total
    return total


def _note_missing(report: PrepReport, name: str, is_missing: npt.NDArray[np.bool_]) -> None:
    count = int(is_missing.sum())
    if count:
        report.missing_by_column[name] = count
