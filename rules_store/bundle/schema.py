"""Input schemas: column names, order, types and value lists (the bank's own field names).

The default retail schema is seed 001's layout (`.del` files carry no header):
`客户编号`, 28 segmentation fields, 10 balances. A user schema file (JSON) may replace it.
Text fields are encoded as the index of their value in the field's declared list, so
`风险评级 = 低风险` becomes 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rules_store.domain.catalog import BALANCE_COLUMNS
from rules_store.errors import XsellError
from rules_store.validation import finite_number, show

FieldKind = Literal["id", "number", "category", "balance", "text"]

ID_COLUMN = "客户编号"
FLAG = ("0", "1")
LEVELS = ("低", "中", "高")


class SchemaError(XsellError, ValueError):
    """A schema file is malformed or inconsistent."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    values: tuple[str, ...] = ()  # categories, in code order
    segment: bool = False  # used as a segmentation feature


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[Field, ...]
    id_column: str = ID_COLUMN
    _by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            msg = f"schema {self.name!r}: duplicate columns {duplicates}"
            raise SchemaError(msg)
        if self.id_column not in names:
            msg = f"schema {self.name!r}: no id column {self.id_column!r}"
            raise SchemaError(msg)
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def segment_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.segment)

    @property
    def balance_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == "balance")

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_column": self.id_column,
            "fields": [
                {"name": f.name, "kind": f.kind, "values": list(f.values), "segment": f.segment}
                for f in self.fields
            ],
        }


def _number(name: str) -> Field:
    return Field(name, "number", segment=True)


def _category(name: str, values: tuple[str, ...]) -> Field:
    return Field(name, "category", values, segment=True)


RETAIL_SCHEMA = Schema(
    "retail",
    (
        Field(ID_COLUMN, "id"),
        _number("年龄"),
        _category("性别", ("男", "女")),
        _number("开户年限"),
        _category("学历", ("初中及以下", "高中", "大专", "本科", "硕士及以上")),
        _category("婚姻状况", ("未婚", "已婚", "离异", "丧偶")),
        _category("村民", FLAG),
        _category("新市民", FLAG),
        _category("代发客户", FLAG),
        _category("按揭客户", FLAG),
        _category("大学生客户", FLAG),
        _category("股东客户", FLAG),
        _category("企业主客户", FLAG),
        _number("持有金融产品个数"),
        _number("持有渠道产品个数"),
        _number("签约消费渠道个数"),
        _number("持有定期存款产品个数"),
        _number("持有贷款产品个数"),
        _number("持有理财产品个数"),
        _number("持有保险产品个数"),
        _number("持有基金产品个数"),
        _number("持有国债产品个数"),
        _number("持有高净值产品个数"),
        _category("风险评级", ("低风险", "中低风险", "中风险", "中高风险", "高风险")),
        _category("储蓄产品偏好", LEVELS),
        _category("理财产品偏好", LEVELS),
        _category("保险产品偏好", LEVELS),
        _category("基金产品偏好", LEVELS),
        _category("交易渠道偏好", ("柜面", "网银", "手机银行", "ATM")),
        *(Field(name, "balance") for name in BALANCE_COLUMNS),
    ),
)


def schema_from_dict(raw: dict[str, Any], *, source: str = "schema") -> Schema:
    """Build a schema from its JSON form, naming what is wrong and where."""
    try:
        fields = []
        for i, item in enumerate(raw["fields"]):
            kind = item.get("kind")
            if kind not in ("id", "number", "category", "balance", "text"):
                msg = (
                    f"{source}: field #{i} ({item.get('name')!r}) has kind {kind!r}; "
                    "expected id, number, category, balance or text"
                )
                raise SchemaError(msg)
            values = tuple(str(v) for v in item.get("values", ()))
            if kind == "category" and not values:
                msg = f"{source}: category field {item['name']!r} needs a non-empty 'values' list"
                raise SchemaError(msg)
            default_segment = kind in ("number", "category")
            fields.append(
                Field(str(item["name"]), kind, values, bool(item.get("segment", default_segment)))
            )
        return Schema(
            str(raw.get("name", source)), tuple(fields), str(raw.get("id_column", ID_COLUMN))
        )
    except (KeyError, TypeError, AttributeError) as exc:
        msg = (
            f"{source}: expected {{'fields': [{{'name', 'kind', 'values'?, 'segment'?}}, ...]}}; "
            f"problem at {exc!s}"
        )
        raise SchemaError(msg) from exc


def load_schema(path: Path) -> Schema:
    """Read a user schema file (JSON: name, id_column, fields[name, kind, values, segment])."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"schema file {path}: cannot read it as JSON ({exc})"
        raise SchemaError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"schema file {path}: expected a JSON object with a 'fields' list"
        raise SchemaError(msg)
    return schema_from_dict(raw, source=str(path))


def encode_profile(
    schema: Schema, record: Mapping[str, Any], *, unknown: str = "stop"
) -> tuple[float, ...]:
    """One customer's segmentation fields as numbers, the way training encodes a file.

    Categories become the index of their value in the field's list (blanks around the
    value ignored); with `unknown="code"` a value outside the list becomes len(values).
    Used by the stream for profile and snapshot events; a test checks it agrees with the
    batch encoding row by row.

    >>> encode_profile(RETAIL_SCHEMA, {f.name: 0 for f in RETAIL_SCHEMA.segment_fields}
    ...                | {"风险评级": "中风险", "性别": "女", "学历": "本科", "婚姻状况": "已婚",
    ...                   "储蓄产品偏好": "高", "理财产品偏好": "低", "保险产品偏好": "中",
    ...                   "基金产品偏好": "低", "交易渠道偏好": "ATM"})[22]
    2.0
    """
    values = []
    for spec in schema.segment_fields:
        raw = record.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            msg = f"field {spec.name!r} is missing"
            raise SchemaError(msg)
        if isinstance(raw, (list, dict)):
            msg = f"field {spec.name!r} must be a single value, got {show(raw)}"
            raise SchemaError(msg)
        if spec.kind == "category":
            # A JSON flag may arrive as 1 or 1.0 where the file had "1".
            text = (
                str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw).strip()
            )
            if text in spec.values:
                values.append(float(spec.values.index(text)))
            elif unknown == "code":
                values.append(float(len(spec.values)))
            else:
                msg = f"field {spec.name!r}: {show(raw)} is not one of {list(spec.values)}"
                raise SchemaError(msg)
        else:
            if isinstance(raw, bool):
                msg = f"field {spec.name!r} must be a number, got {raw!r}"
                raise SchemaError(msg)
            try:
                number = float(raw)
            except (TypeError, ValueError):
                msg = f"field {spec.name!r} must be a number, got {show(raw)}"
                raise SchemaError(msg) from None
            except OverflowError:  # an integer of 400 digits: refused just below
                number = math.inf
            values.append(finite_number(number, f"field {spec.name!r}", SchemaError))
    return tuple(values)
