"""`POST /predict` (seed 000's predict API): a customer's profile and holdings in, the
segment, offers with their rules and the churn figures out. Validation names the field
and what was expected; no I/O here, the web view only decodes and encodes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from rules_store.bundle.schema import ProfileCodes, Schema, SchemaError, profile_codes
from rules_store.domain.alerts import ActiveView, churn_model_opinion
from rules_store.domain.catalog import CORPORATE_FIELDS, Catalog
from rules_store.domain.churn import BASELINE_MONTHS
from rules_store.domain.events import InvalidEventError
from rules_store.domain.holdings import corporate_fields
from rules_store.domain.offers import OfferIndex
from rules_store.domain.ranking import Customers, held_array, needs_profile
from rules_store.errors import XsellError
from rules_store.validation import MAX_MAGNITUDE, show
from rules_store.views.customer_view import NO_CHURN_MODEL, offers_json

MAX_MONTHS = 36
KNOWN_KEYS = frozenset(
    {"customer_id", "profile", "holdings", "balances", "asset_months", "corporate", "top_k"}
)


class RequestError(XsellError, ValueError):
    """A request the API refuses: `field` names where, the message what was expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"error": "invalid_request", "field": self.field, "message": self.message}


@dataclass(frozen=True)
class PredictRequest:
    customer_id: str | None
    profile: Mapping[str, Any]
    held: int
    asset_months: Mapping[str, float]
    top_k: int
    corporate: Mapping[str, float | str] = field(default_factory=dict)


def _number(field: str, value: object, *, minimum: float = -MAX_MAGNITUDE) -> float:
    """A finite JSON number from `minimum` to MAX_MAGNITUDE, or a RequestError naming `field`.

    >>> _number("asset_months.2026-01", 10**400, minimum=0)
    Traceback (most recent call last):
    ...
    rules_store.views.predict.RequestError: asset_months.2026-01: expected a number from 0 to 1e+15, got an integer of 401 digits
    """
    # The comparison is False for NaN and both infinities, and exact for a huge int
    # (math.isfinite(10**400) would raise OverflowError).
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not minimum <= value <= MAX_MAGNITUDE
    ):
        raise RequestError(
            field, f"expected a number from {minimum:g} to {MAX_MAGNITUDE:g}, got {_shown(value)}"
        )
    return float(value)


def _shown(value: object) -> str:
    if isinstance(value, int) and abs(value) > 10**30:
        return f"an integer of {len(str(abs(value)))} digits"  # JSON allows at most 4300
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _holdings(body: Mapping[str, Any], catalog: Catalog) -> int:
    columns = catalog.balance_columns
    if ("holdings" in body) == ("balances" in body):
        raise RequestError(
            "holdings",
            "give exactly one of 'holdings' (a list of product names) or 'balances' "
            f"(balance column -> number, columns {list(columns)})",
        )
    if "holdings" in body:
        products = body["holdings"]
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            raise RequestError("holdings", f"expected a list of product names, got {products!r}")
        unknown = sorted(set(products) - set(catalog.names))
        if unknown:
            raise RequestError(
                "holdings", f"unknown products {unknown}; expected some of {list(catalog.names)}"
            )
        return catalog.mask(products)
    balances = _object_of(
        body["balances"], "balances", columns, "balance column -> number", "columns"
    )
    checked = {
        column: _number(f"balances.{column}", balances.get(column, 0), minimum=0)
        for column in columns
    }
    return catalog.holdings_from_balances(checked)


def _asset_months(body: Mapping[str, Any]) -> dict[str, float]:
    raw = body.get("asset_months", {})
    if not isinstance(raw, Mapping):
        raise RequestError(
            "asset_months",
            f"expected an object YYYY-MM -> average daily financial assets, got {raw!r}",
        )
    if len(raw) > MAX_MONTHS:
        raise RequestError("asset_months", f"at most {MAX_MONTHS} months, got {len(raw)}")
    months = {}
    for month, value in raw.items():
        if not re.fullmatch(r"\d{4}-\d{2}", str(month)):
            raise RequestError("asset_months", f"{month!r} is not a month YYYY-MM")
        try:
            date.fromisoformat(f"{month}-01")
        except ValueError:
            raise RequestError("asset_months", f"{month!r} is not a month YYYY-MM") from None
        months[str(month)] = _number(f"asset_months.{month}", value, minimum=0)
    return months


def parse_predict_request(body: object, schema: Schema) -> PredictRequest:
    """Validate a decoded JSON body against the active bundle's schema and catalog.

    >>> from rules_store.bundle.schema import RETAIL_SCHEMA
    >>> parse_predict_request({"holdings": []}, RETAIL_SCHEMA)
    Traceback (most recent call last):
    ...
    rules_store.views.predict.RequestError: profile: expected an object with the segmentation fields ...
    """
    if not isinstance(body, Mapping):
        raise RequestError("body", f"expected a JSON object, got {type(body).__name__}")
    extra = sorted(set(body) - KNOWN_KEYS)
    if extra:
        raise RequestError(extra[0], f"unknown field; expected some of {sorted(KNOWN_KEYS)}")
    customer_id = body.get("customer_id")
    if customer_id is not None and (
        not isinstance(customer_id, str) or not 0 < len(customer_id) <= 64
    ):
        raise RequestError(
            "customer_id", f"expected a string of 1 to 64 characters, got {customer_id!r}"
        )
    fields = [f.name for f in schema.segment_fields]
    profile = body.get("profile")
    if not isinstance(profile, Mapping):
        raise RequestError(
            "profile", f"expected an object with the segmentation fields {fields}, got {profile!r}"
        )
    missing = [name for name in fields if name not in profile]
    if missing:
        raise RequestError(f"profile.{missing[0]}", f"missing; every one of {missing} is required")
    top_k = body.get("top_k", 3)
    max_top_k = len(schema.products.names)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= max_top_k:
        raise RequestError("top_k", f"expected an integer from 1 to {max_top_k}, got {top_k!r}")
    return PredictRequest(
        customer_id=customer_id,
        profile=dict(profile),
        held=_holdings(body, schema.products),
        asset_months=_asset_months(body),
        top_k=top_k,
        corporate=_corporate(body),
    )


def _object_of(
    value: object, field: str, known: Sequence[str], contents: str, names: str
) -> Mapping[str, Any]:
    """`value` when it is a JSON object whose keys are all `known`, else a RequestError."""
    if not isinstance(value, Mapping):
        raise RequestError(field, f"expected an object of {contents}, got {show(value)}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise RequestError(field, f"unknown {names} {unknown}; expected some of {list(known)}")
    return value


def _corporate(body: Mapping[str, Any]) -> dict[str, float | str]:
    raw = _object_of(
        body.get("corporate", {}),
        "corporate",
        CORPORATE_FIELDS,
        "the churn model's fields",
        "fields",
    )
    for name, value in raw.items():
        if isinstance(value, int | float) and not isinstance(value, bool):  # text: below
            _number(f"corporate.{name}", value)
    try:
        return corporate_fields(raw, where="corporate field")
    except InvalidEventError as exc:
        raise RequestError("corporate", str(exc)) from exc


def _encode(schema: Schema, profile: Mapping[str, Any], unknown: str) -> ProfileCodes:
    try:
        return profile_codes(schema, profile, unknown=unknown)
    except SchemaError as exc:
        found = re.match(r"field '([^']+)'", str(exc))
        raise RequestError(f"profile.{found[1]}" if found else "profile", str(exc)) from exc


def churn_figures(months: Mapping[str, float], threshold: float) -> dict[str, Any] | None:
    """Seed 001's test on monthly averages: the latest month against the three before it.

    >>> churn_figures({"2026-08": 100, "2026-09": 100, "2026-10": 100, "2026-11": 40}, 0.5)["at_risk"]
    True
    """
    if not months:
        return None
    latest = max(months)
    year, month = int(latest[:4]), int(latest[5:])
    previous = []
    for _ in range(BASELINE_MONTHS):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        previous.append(f"{year:04d}-{month:02d}")
    if any(m not in months for m in previous):
        return {
            "month": latest,
            "at_risk": None,
            "reason": f"needs the three months before {latest}: {sorted(previous)}",
        }
    baseline = sum(months[m] for m in previous) / BASELINE_MONTHS
    # A baseline of a few 1e-300 makes the ratio overflow to inf; JSON has no -Infinity,
    # so such a drop is reported as null (it is a rise, never a churn risk).
    drop = 1 - months[latest] / baseline if baseline > 0 else 0.0
    return {
        "month": latest,
        "month_avg": round(months[latest], 2),
        "baseline_avg": round(baseline, 2),
        "baseline_months": sorted(previous),
        "drop": round(drop, 4) if math.isfinite(drop) else None,
        "threshold": threshold,
        "at_risk": baseline > 0 and drop > threshold,
    }


def product_scores(
    index: OfferIndex, segment: int, held: int, features: Sequence[float]
) -> dict[str, Any]:
    """Every product's score by the bundle's ranker: under "probabilities" for propensity
    and blend (P(holds it)), "scores" otherwise; nothing for a bundle without a ranker."""
    if index.bundle.ranker is None:
        return {}
    customers = Customers(np.asarray([features], float), held_array([held]), np.asarray([segment]))
    scores = index.scorer.scores(customers)[0]
    key = "probabilities" if needs_profile(index.scorer) else "scores"
    return {
        "ranker": index.scorer.name,
        key: {
            item: (round(float(v), 6) if np.isfinite(v) else None)
            for item, v in zip(index.bundle.items, scores, strict=True)
        },
    }


def predict(request: PredictRequest, active: ActiveView, *, threshold: float) -> dict[str, Any]:
    """Segment, offers (with their rules) and churn figures for one customer."""
    version, bundle, index = active
    features, unseen = _encode(bundle.schema, request.profile, bundle.unknown_policy)
    segment = bundle.segment_model.assign_segment(features)
    if bundle.ranker is None:
        offers = bundle.recommend(request.held, segment, top_k=request.top_k)
    else:
        offers = index.ranked(segment, request.held, features, top_k=request.top_k)
    return {
        "customer_id": request.customer_id,
        "bundle_version": version,
        "segment": segment,
        "unseen_values": list(unseen),  # profile fields given the unknown code
        "holdings": list(bundle.catalog.products_of(request.held)),
        "offers": offers_json(offers, bundle.items),
        **product_scores(index, segment, request.held, features),
        "churn": {
            "figures": churn_figures(request.asset_months, threshold),
            "model": churn_model_opinion(bundle, request.corporate, held=request.held, as_of=None)
            or NO_CHURN_MODEL,
        },
    }
