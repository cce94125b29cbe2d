"""Input schemas: columns, types, value lists and the product catalog (the bank's own names).

The default retail schema is seed 001's layout (`.del` files carry no header):
`客户编号`, 28 segmentation fields, 10 balances, and the 8 products derived from them. It
is a schema file shipped in the package (`retail_schema.json`); a user's schema file
(`--schema`, the same keys) replaces it. Text fields are encoded as the index of their
value in the field's list, so `风险评级 = 低风险` becomes 0. A category field without
`values` learns them from the training data (sorted), and the bundle keeps them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from rules_store.domain.catalog import Catalog, CatalogError, Product
from rules_store.errors import XsellError
from rules_store.validation import finite_number, show

FieldKind = Literal["id", "number", "category", "balance", "text"]
UnknownPolicy = Literal["stop", "code"]
KINDS: tuple[FieldKind, ...] = ("id", "number", "category", "balance", "text")

ID_COLUMN = "客户编号"
DEFAULT_SCHEMA_FILE = "retail_schema.json"
SCHEMA_KEYS = frozenset({"name", "id_column", "fields", "products", "customer_value"})
VALUE_KEYS = frozenset({"tenure", "activity"})
FIELD_KEYS = frozenset({"name", "kind", "values", "segment", "unknown"})
PRODUCT_KEYS = frozenset({"name", "balances", "financial_asset", "value"})


class SchemaError(XsellError, ValueError):
    """A schema file is malformed or inconsistent."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    values: tuple[str, ...] = ()  # categories, in code order
    segment: bool = False  # used as a segmentation feature
    # What a value outside `values` becomes: "code" (the reserved code len(values),
    # counted), "stop", or None for the command's --unknown-category. Learned fields: "code".
    unknown: UnknownPolicy | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[Field, ...]
    id_column: str = ID_COLUMN
    catalog: Catalog | None = None  # products derived from the balance fields
    # The customer value's profile fields (rules_store/domain/customer_value.py):
    # {"tenure": field, "activity": field}, either may be absent.
    value_fields: Mapping[str, str] = field(default_factory=dict)
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
        by_name = {f.name: f for f in self.fields}
        object.__setattr__(self, "_by_name", by_name)
        for role, column in self.value_fields.items():
            spec = by_name.get(column)
            if spec is None or spec.kind != "number" or not spec.segment:
                msg = (
                    f"schema {self.name!r}: customer_value.{role} names {column!r}; expected a"
                    " field of kind 'number' used for segmentation (the stream keeps only those)"
                )
                raise SchemaError(msg)
        for product in self.catalog.products if self.catalog else ():
            for column in product.balances:
                spec = by_name.get(column)
                if spec is None:
                    msg = (
                        f"schema {self.name!r}: product {product.name!r} has balance column "
                        f"{column!r}, which is not a field of the schema"
                    )
                    raise SchemaError(msg)
                if spec.kind != "balance":
                    msg = (
                        f"schema {self.name!r}: product {product.name!r} has balance column "
                        f"{column!r}, a field of kind {spec.kind!r}; expected kind 'balance'"
                    )
                    raise SchemaError(msg)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def segment_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.segment)

    @property
    def balance_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.kind == "balance")

    @property
    def products(self) -> Catalog:
        """The catalog; a retail schema always has one (schema files get the default)."""
        if self.catalog is None:
            msg = f"schema {self.name!r} has no products"
            raise SchemaError(msg)
        return self.catalog

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def with_values(self, learned: Mapping[str, tuple[str, ...]]) -> Schema:
        """The schema with the values learned for fields that listed none."""
        return replace(
            self,
            fields=tuple(
                replace(f, values=learned[f.name]) if f.name in learned else f for f in self.fields
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "id_column": self.id_column,
            "fields": [_field_to_dict(f) for f in self.fields],
        }
        if self.catalog is not None:
            doc["products"] = [
                {
                    "name": p.name,
                    "balances": list(p.balances),
                    "financial_asset": p.financial_asset,
                    "value": p.value,
                }
                for p in self.catalog.products
            ]
        if self.value_fields:
            doc["customer_value"] = dict(self.value_fields)
        return doc


def _field_to_dict(spec: Field) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "values": list(spec.values),
        "segment": spec.segment,
    }
    if spec.unknown is not None:
        doc["unknown"] = spec.unknown
    return doc


def _refuse_unknown_keys(item: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(item) - known)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}"
        raise SchemaError(msg)


def _field_from_dict(item: Any, i: int, source: str) -> Field:
    if not isinstance(item, dict):
        msg = f"{source}: field #{i} must be an object, got {show(item)}"
        raise SchemaError(msg)
    _refuse_unknown_keys(item, FIELD_KEYS, f"{source}: field #{i} ({item.get('name')!r})")
    kind = item.get("kind")
    if kind not in KINDS:
        msg = (
            f"{source}: field #{i} ({item.get('name')!r}) has kind {kind!r}; "
            "expected id, number, category, balance or text"
        )
        raise SchemaError(msg)
    values = tuple(str(v) for v in item.get("values", ()))
    unknown = item.get("unknown", "code" if kind == "category" and not values else None)
    if unknown not in (None, "stop", "code"):
        msg = f"{source}: field {item['name']!r} has unknown {unknown!r}; expected 'stop' or 'code'"
        raise SchemaError(msg)
    default_segment = kind in ("number", "category")
    return Field(
        str(item["name"]),
        kind,
        values,
        bool(item.get("segment", default_segment)),
        cast("UnknownPolicy | None", unknown),
    )


def _product_from_dict(item: Any, i: int, source: str) -> Product:
    where = f"{source}: product #{i}"
    if not isinstance(item, dict):
        msg = f"{where} must be an object with name, balances, financial_asset, got {show(item)}"
        raise SchemaError(msg)
    where = f"{where} ({item.get('name')!r})"
    _refuse_unknown_keys(item, PRODUCT_KEYS, where)
    name, balances = item.get("name"), item.get("balances")
    if not isinstance(name, str) or not name.strip():
        msg = f"{where}: 'name' must be a non-empty string"
        raise SchemaError(msg)
    if (
        not isinstance(balances, list)
        or not balances
        or not all(isinstance(c, str) for c in balances)
    ):
        msg = f"{where}: 'balances' must be a non-empty list of balance column names, got {show(balances)}"
        raise SchemaError(msg)
    flag = item.get("financial_asset")
    if not isinstance(flag, bool):
        msg = f"{where}: 'financial_asset' must be true or false, got {show(flag)}"
        raise SchemaError(msg)
    value = item.get("value", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        msg = f"{where}: 'value' must be a positive number, got {show(value)}"
        raise SchemaError(msg)
    return Product(name, tuple(balances), flag, float(value))


def _catalog_from_list(raw: Any, source: str) -> Catalog:
    if not isinstance(raw, list):
        msg = f"{source}: 'products' must be a list of products, got {show(raw)}"
        raise SchemaError(msg)
    try:
        return Catalog(tuple(_product_from_dict(p, i, source) for i, p in enumerate(raw)))
    except CatalogError as exc:
        raise SchemaError(f"{source}: {exc}") from exc


def _value_fields(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        msg = f"{where} must be an object like {{'tenure': field, 'activity': field}}, got {show(raw)}"
        raise SchemaError(msg)
    _refuse_unknown_keys(raw, VALUE_KEYS, where)
    for role, column in raw.items():
        if not isinstance(column, str):
            msg = f"{where}.{role} must be a field name, got {show(column)}"
            raise SchemaError(msg)
    return dict(raw)


@cache
def _default_doc() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(DEFAULT_SCHEMA_FILE).read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))


def schema_from_dict(raw: dict[str, Any], *, source: str = "schema") -> Schema:
    """Build a schema from its JSON form, naming what is wrong and where.

    Without a `products` list the default catalog (seed 001's 8 products) is used, which
    needs its balance columns among the fields.
    """
    _refuse_unknown_keys(raw, SCHEMA_KEYS, source)
    items = raw.get("fields")
    if not isinstance(items, list):
        msg = f"{source}: expected {{'fields': [{{'name', 'kind', 'values'?, 'segment'?}}, ...]}}"
        raise SchemaError(msg)
    try:
        fields = tuple(_field_from_dict(item, i, source) for i, item in enumerate(items))
    except KeyError as exc:
        msg = (
            f"{source}: a field has no {exc!s}; expected {{'name', 'kind', 'values'?, 'segment'?}}"
        )
        raise SchemaError(msg) from exc
    catalog = _catalog_from_list(raw.get("products", _default_doc()["products"]), source)
    name, id_column = str(raw.get("name", source)), str(raw.get("id_column", ID_COLUMN))
    value_fields = _value_fields(raw.get("customer_value", {}), f"{source}: customer_value")
    try:
        return Schema(name, fields, id_column, catalog, value_fields)
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from exc


RETAIL_SCHEMA = schema_from_dict(_default_doc(), source=f"default schema {DEFAULT_SCHEMA_FILE}")


def load_schema(path: Path) -> Schema:
    """Read a user schema file (JSON: name, id_column, fields, products)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"schema file {path}: cannot read it as JSON ({exc})"
        raise SchemaError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"schema file {path}: expected a JSON object with a 'fields' list"
        raise SchemaError(msg)
    return schema_from_dict(raw, source=str(path))


class ProfileCodes(NamedTuple):
    features: tuple[float, ...]
    unseen: tuple[str, ...]  # fields whose value was outside their list, given the unknown code


def encode_profile(
    schema: Schema, record: Mapping[str, Any], *, unknown: str = "stop"
) -> tuple[float, ...]:
    """One customer's segmentation fields as numbers (`profile_codes` without the count).

    >>> encode_profile(RETAIL_SCHEMA, {f.name: 0 for f in RETAIL_SCHEMA.segment_fields}
    ...                | {"风险评级": "中风险", "性别": "女", "学历": "本科", "婚姻状况": "已婚",
    ...                   "储蓄产品偏好": "高", "理财产品偏好": "低", "保险产品偏好": "中",
    ...                   "基金产品偏好": "低", "交易渠道偏好": "ATM"})[22]
    2.0
    """
    return profile_codes(schema, record, unknown=unknown).features


def profile_codes(
    schema: Schema, record: Mapping[str, Any], *, unknown: str = "stop"
) -> ProfileCodes:
    """One customer's segmentation fields as numbers, the way training encodes a file, and
    the fields whose value was unseen.

    Categories become the index of their value in the field's list (blanks around the
    value ignored); a value outside the list follows the field's `unknown` policy, else
    `unknown`: "code" makes it len(values) and names the field in `unseen`. Used by the
    stream for profile and snapshot events; a test checks it agrees with the batch
    encoding row by row.
    """
    values = []
    unseen = []
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
            elif (spec.unknown or unknown) == "code":
                values.append(float(len(spec.values)))
                unseen.append(spec.name)
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
    return ProfileCodes(tuple(values), tuple(unseen))
