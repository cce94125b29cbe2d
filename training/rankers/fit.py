"""Fit the asked-for rankers on one set of customers, and turn one into the bundle's spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from rules_store.bundle.model import SegmentRules
from rules_store.domain.catalog import Catalog
from rules_store.domain.ranking import (
    RANKERS,
    BlendScorer,
    Customers,
    ItemCFScorer,
    PopularScorer,
    PropensityScorer,
    RankerName,
    RankerSpec,
    RulesScorer,
    Scorer,
    held_bits,
    item_cosine,
    popularity_rates,
)
from rules_store.errors import XsellError
from training.rankers.propensity import PropensityParams, fit_propensity
from training.rankers.usercf import fit_usercf
from training.stages import Stages


class RankerChoiceError(XsellError, ValueError):
    """A ranker name that does not exist, or nothing left to compare."""


@dataclass(frozen=True)
class RankerParams:
    names: tuple[RankerName, ...] = RANKERS
    propensity: PropensityParams = field(default_factory=PropensityParams)
    usercf_k: int = 50
    usercf_pool: int = 20_000
    seed: int = 7


def parse_rankers(text: str) -> tuple[RankerName, ...]:
    """Comma-separated ranker names, in the canonical order.

    >>> parse_rankers("propensity,popular")
    ('popular', 'propensity')
    >>> parse_rankers("popular,knn")
    Traceback (most recent call last):
    ...
    training.rankers.fit.RankerChoiceError: --rankers: unknown ranker 'knn'; expected some of popular, rules, itemcf, usercf, propensity, blend
    """
    asked = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in asked if name not in RANKERS]
    if unknown or not asked:
        shown = repr(unknown[0]) if unknown else "(none)"
        msg = f"--rankers: unknown ranker {shown}; expected some of {', '.join(RANKERS)}"
        raise RankerChoiceError(msg)
    return tuple(name for name in RANKERS if name in asked)


MIRROR_AUC = 0.95
MIRROR_SAMPLE = 20_000


def profile_columns(
    customers: Customers, feature_names: tuple[str, ...], n_items: int, *, seed: int = 7
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(columns the rankers read, fields left out): a profile field that alone tells
    whether some product is held (ROC-AUC > 0.95, like a count of that product's
    accounts) mirrors the holdings. Left in, it would give a hidden product away in the
    hold-out and make every product a customer lacks look equally unlikely."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(customers), size=min(len(customers), MIRROR_SAMPLE), replace=False)
    features, bits = customers.features[rows], held_bits(customers.held[rows], n_items)
    mirrors = []
    for c in range(len(feature_names)):
        for j in range(n_items):
            y = bits[:, j]
            if 0 < y.sum() < len(y) and np.ptp(features[:, c]) > 0:
                auc = float(roc_auc_score(y, features[:, c]))
                if max(auc, 1 - auc) > MIRROR_AUC:
                    mirrors.append(c)
                    break
    kept = tuple(c for c in range(len(feature_names)) if c not in mirrors)
    return kept, tuple(feature_names[c] for c in mirrors)


def fit_rankers(
    customers: Customers,
    catalog: Catalog,
    feature_names: tuple[str, ...],
    segments: Sequence[SegmentRules],
    params: RankerParams,
    *,
    stages: Stages | None = None,
) -> tuple[dict[RankerName, Scorer], dict[str, Any]]:
    """The rankers (blend brings propensity and rules with it) and fitting notes."""
    stages = stages or Stages()
    n = len(catalog.names)
    rules = tuple(s.rules for s in segments)
    popularity = tuple(s.popularity for s in segments)
    rules_scorer = RulesScorer(rules, popularity, catalog.values)
    fitted: dict[RankerName, Scorer] = {}
    names = set(params.names)
    columns, mirrors = profile_columns(customers, feature_names, n, seed=params.seed)
    notes: dict[str, Any] = {"inputs_left_out": list(mirrors)}
    if "popular" in names:
        fitted["popular"] = PopularScorer(popularity_rates(popularity, n))
    if "rules" in names:
        fitted["rules"] = rules_scorer
    if "itemcf" in names:
        with stages.stage("itemcf: product cosine"):
            fitted["itemcf"] = ItemCFScorer(item_cosine(held_bits(customers.held, n)))
    if "usercf" in names:
        with stages.stage(
            f"usercf: index of {min(params.usercf_pool, len(customers)):,} customers"
        ):
            fitted["usercf"] = fit_usercf(
                customers,
                n,
                columns,
                k=params.usercf_k,
                pool=params.usercf_pool,
                seed=params.seed,
            )
    if names & {"propensity", "blend"}:
        with stages.stage("propensity: choose and fit a model per product"):
            propensity, comparison = fit_propensity(
                customers, catalog.names, feature_names, columns, params.propensity
            )
        notes["propensity_cv_log_loss"] = comparison
        notes["propensity_kinds"] = {
            item: (None if m is None else m.kind)
            for item, m in zip(catalog.names, propensity.spec.models, strict=True)
        }
        if "propensity" in names:
            fitted["propensity"] = propensity
        if "blend" in names:
            fitted["blend"] = BlendScorer(propensity, rules_scorer)
    return {name: fitted[name] for name in RANKERS if name in fitted}, notes


def spec_of(scorer: Scorer, figures: Mapping[str, Any]) -> RankerSpec:
    """What the bundle carries to serve `scorer` (popular and rules need only its segments)."""
    if isinstance(scorer, ItemCFScorer):
        return RankerSpec("itemcf", similarity=scorer.similarity, figures=figures)
    if isinstance(scorer, PropensityScorer):
        return RankerSpec("propensity", propensity=scorer.spec, figures=figures)
    if isinstance(scorer, BlendScorer):
        return RankerSpec("blend", propensity=scorer.propensity.spec, figures=figures)
    if isinstance(scorer, PopularScorer | RulesScorer):
        return RankerSpec(scorer.name, figures=figures)
    msg = f"ranker {scorer.name!r} cannot be put into a bundle"
    raise RankerChoiceError(msg)
