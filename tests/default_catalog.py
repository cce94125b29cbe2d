"""Seed 001's default catalog, under the names tests used when it was a module constant."""

from __future__ import annotations

from rules_store.bundle.schema import RETAIL_SCHEMA

CATALOG = RETAIL_SCHEMA.products
PRODUCTS = CATALOG.names
PRODUCT_BALANCES = {p.name: p.balances for p in CATALOG.products}
FINANCIAL_ASSETS = CATALOG.financial_assets
BALANCE_COLUMNS = CATALOG.balance_columns
products_to_mask = CATALOG.mask
mask_to_products = CATALOG.products_of
holdings_from_balances = CATALOG.holdings_from_balances
financial_assets = CATALOG.financial_total
