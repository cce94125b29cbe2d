"""What the REST API and the dashboard say about a customer, an offer and a bundle: JSON
shapes built from the pure state, shared by `GET /customers/{id}`, `POST /predict` and
`GET /bundle`."""

from __future__ import annotations

from typing import Any

from rules_store.bundle.model import Bundle
from rules_store.domain.alerts import (
    ActiveView,
    churn_model_opinion,
    customer_value,
    segment_of,
)
from rules_store.domain.churn import drop_on
from rules_store.domain.holdings import CustomerState
from rules_store.domain.ranking import evidence_json
from rules_store.domain.rules import Offer, Rule, format_itemset
from rules_store.domain.state_codec import figures_to_dict


def rule_json(rule: Rule, items: tuple[str, ...]) -> dict[str, Any]:
    return {
        "antecedents": format_itemset(rule.antecedents, items).split("|"),
        "consequents": format_itemset(rule.consequents, items).split("|"),
        "support": rule.support,
        "confidence": rule.confidence,
        "lift": rule.lift,
    }


def offers_json(offers: tuple[Offer, ...], items: tuple[str, ...]) -> list[dict[str, Any]]:
    """Offers best first, each with the rule that explains it (None for a fallback)."""
    return [
        {
            "rank": rank,
            "product": items[offer.item],
            "score": offer.score,
            "fallback": offer.fallback,
            "rule": rule_json(offer.rule, items) if offer.rule is not None else None,
            **(
                {} if offer.evidence is None else {"evidence": evidence_json(offer.evidence, items)}
            ),
        }
        for rank, offer in enumerate(offers, start=1)
    ]


NO_CHURN_MODEL = {
    "probability": None,
    "reason": "the active bundle has no churn model (`xsell publish --churn-model` adds one)",
}


def customer_json(state: CustomerState, active: ActiveView | None) -> dict[str, Any]:
    """A customer as the worker holds them: holdings, segment, current offers, churn figures.

    The offers are what the active bundle recommends for these holdings now; whether the
    contact policy would send one is shown by `contact` (cool-downs and today's count).
    """
    segment = segment_of(state, active)
    offers: list[dict[str, Any]] = []
    products: tuple[str, ...] = ()  # held in the active bundle's catalog
    opinion = None
    if active is not None:
        _, bundle, index = active
        held = state.held_in(bundle.catalog)
        products = bundle.catalog.products_of(held)
        if segment is not None:
            offers = offers_json(index.offers(segment, held, state.features), bundle.items)
        opinion = churn_model_opinion(
            bundle, state.corporate, held=held, as_of=state.corporate_as_of
        )
    assets = state.assets
    day = assets.latest
    figures = drop_on(assets, day) if day else None
    return {
        "customer_id": state.customer_id,
        "branch_id": state.branch_id,
        "holdings": {
            "products": list(products),
            "balances": dict(state.balances),
        },
        "segment": segment,
        "profile_known": state.features is not None,
        "value": customer_value(state, active.bundle) if active else None,
        "bundle_version": active.version if active else None,
        "offers": offers,
        "churn": {
            "at_risk": assets.risk is not None,
            "flagged": figures_to_dict(assets.risk) if assets.risk else None,
            "latest_day": day,
            "month_to_date": figures_to_dict(figures) if figures else None,
            "last_alert_month": assets.alerted_month,
            "model": opinion or NO_CHURN_MODEL,
        },
        "contact": {
            "last_offered": dict(state.last_offered),
            "alert_day": state.alert_day,
            "alerts_on_day": state.alerts_on_day,
            "declined": dict(state.offers.declined),
        },
        "offers_sent": {
            "pending": [
                {"alert_id": k, "product": o.product, "ts": o.ts, "arm": o.arm}
                for k, o in sorted(state.offers.pending.items())
            ],
            "settled": [
                {"alert_id": k, "product": s.offer.product, "ts": s.offer.ts, "outcome": s.outcome}
                for k, s in sorted(state.offers.settled.items())
            ],
        },
    }


def bundle_json(version: str, bundle: Bundle) -> dict[str, Any]:
    """The active bundle for the dashboard's rules explorer: its metrics and every rule."""
    return {
        "version": version,
        "created_at": bundle.created_at,
        "items": list(bundle.items),
        "metrics": bundle.metrics,
        "segments": [
            {
                "segment": s.segment,
                "customers": s.customers,
                "rules": [rule_json(rule, bundle.items) for rule in s.rules],
            }
            for s in bundle.segments
        ],
    }
