"""The bundle: everything needed to score a customer, as plain values.

Training builds it; the batch commands and the stream load it. It carries its schema,
and so its product catalog: nothing downstream names a product. `recommend`
and `assign_segment` here are the only implementations both sides use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules_store.bundle.schema import Schema
from rules_store.domain.catalog import Catalog
from rules_store.domain.customer_value import ValueModel
from rules_store.domain.ranking import RankerSpec
from rules_store.domain.rules import Offer, Rule, rank_popularity, recommend
from rules_store.domain.scoring import ScoringModel
from rules_store.domain.segments import SegmentModel

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SegmentRules:
    segment: int
    customers: int
    rules: tuple[Rule, ...]  # strongest first
    popularity: tuple[tuple[int, float], ...]  # (item, holding rate), most held first
    pruned: tuple[Rule, ...] = ()  # redundant rules split off when pruning was asked for


@dataclass(frozen=True)
class Bundle:
    schema: Schema  # fields (with learned values) and the product catalog
    unknown_policy: str
    segment_model: SegmentModel
    segments: tuple[SegmentRules, ...]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    created_at: str = ""
    code_version: str = ""
    format_version: int = FORMAT_VERSION
    # Corporate models (seed 001, 对公), attached by `xsell publish --churn-model/--potential-model`.
    churn_model: ScoringModel | None = None
    potential_model: ScoringModel | None = None
    value_model: ValueModel | None = None  # the customer value percentile (seed 003)
    # The ranker chosen by evaluation (rules_store/domain/ranking.py); None serves the rules.
    ranker: RankerSpec | None = None

    @property
    def catalog(self) -> Catalog:
        return self.schema.products

    @property
    def items(self) -> tuple[str, ...]:
        """Product names in catalog order: bit i of a rule's itemsets is items[i]."""
        return self.schema.products.names

    def recommend(self, held: int, segment: int, *, top_k: int = 3) -> tuple[Offer, ...]:
        rules, values = self.segments[segment], self.catalog.values
        return recommend(
            held,
            rules.rules,
            rank_popularity(rules.popularity, values),
            top_k=top_k,
            values=values,
        )
