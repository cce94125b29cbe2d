"""Schemas with a catalog of any products, for tests of catalogs other than seed 001's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rules_store.bundle.schema import RETAIL_SCHEMA, Field, Schema
from rules_store.domain.catalog import Catalog, Product


def catalog_schema(names: Sequence[str], *, base: Schema = RETAIL_SCHEMA) -> Schema:
    """`base`'s fields without its balances, one balance column per product
    (`<name>_balance`), every product a financial asset."""
    products = tuple(Product(n, (f"{n}_balance",), financial_asset=True) for n in names)
    fields = tuple(f for f in base.fields if f.kind != "balance") + tuple(
        Field(p.balances[0], "balance") for p in products
    )
    return replace(base, fields=fields, catalog=Catalog(products))
