"""Rankers: how each one scores the products a customer lacks, with numpy only.

A ranker turns customers (encoded profile, holdings mask, segment) into an n x items
score matrix; `-inf` means "would not offer". Offers are the best finite scores among
the products not held, ties in catalog order. The bundle carries one ranker as plain
values (`RankerSpec`); batch commands, the REST views and the stream all score with
`Ranker` built from it, so they give the same offers for the same customer.

- `popular`: the segment's holding rate (the baseline);
- `rules`: today's per-segment rules, exactly as `recommend` orders them;
- `itemcf`: sum over held products i of cos(i, j), the cosine between product columns
  of the customer x product matrix (seeds 000/004);
- `propensity`: per product, P(holds j | profile, other holdings) from a classifier;
- `blend`: propensity's probability as the score, the supporting rule as evidence.

Evidence per offer: the rule (rules, blend), the held products most similar to it
(itemcf), and for propensity the inputs that raise the log-odds most: each input's
contribution is logit(p) minus the logit with that input set to its training mean (for
logistic regression this is exactly coef x standardized input; other kinds are
evaluated once more per input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from rules_store.domain.boosting_tables import BoostingTables, Cuts
from rules_store.domain.rules import Offer, Rule, match_rules, rank_popularity, recommend
from rules_store.domain.scoring import BoostingModel, LogisticModel, ScoringModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RankerName = Literal["popular", "rules", "itemcf", "usercf", "propensity", "blend"]
RANKERS: tuple[RankerName, ...] = ("popular", "rules", "itemcf", "usercf", "propensity", "blend")
# usercf scores from other customers' rows, which a bundle must not carry: evaluation only.
SERVABLE: tuple[RankerName, ...] = ("popular", "rules", "itemcf", "propensity", "blend")
HELD_PREFIX = "held:"  # propensity input name of a holding bit
TOP_INPUTS = 3
TOP_SIMILAR = 3
MAX_MATCHED = 100_000  # (segment, holdings) whose matching rules are kept; then start over


@dataclass(frozen=True)
class Customers:
    """What a ranker reads, one row per customer."""

    features: FloatArray  # n x the bundle's segmentation fields, encoded
    held: IntArray  # holdings masks, bit i = items[i]
    segments: IntArray

    def __len__(self) -> int:
        return len(self.held)

    def take(self, rows: IntArray) -> Customers:
        return Customers(self.features[rows], self.held[rows], self.segments[rows])


@dataclass(frozen=True)
class Inputs:
    """A batch's model inputs for propensity, built once for its scores and for its offers'
    evidence (the stream explains the offers it sends among the customers it scored)."""

    customers: Customers
    rows: FloatArray  # the profile columns read, then one bit per product
    bins: IntArray  # `Cuts.bins` of the rows (no columns when no model has trees)

    def take(self, at: IntArray) -> Inputs:
        return Inputs(self.customers.take(at), self.rows[at], self.bins[at])


def held_array(masks: Sequence[int]) -> IntArray:
    """Holdings masks as int64, as the batch keeps them (bit 63 is the sign bit).

    >>> held_array([5, 1 << 63]).tolist()
    [5, -9223372036854775808]
    """
    return np.asarray(masks, dtype=np.uint64).view(np.int64)


def held_bits(held: IntArray, n_items: int) -> FloatArray:
    """The holdings masks as an n x items 0/1 matrix."""
    return ((held[:, None] >> np.arange(n_items)) & 1).astype(np.float64)


def top_offers(scores: FloatArray, held: IntArray, k: int) -> IntArray:
    """The k best items per row among those not held and with a finite score; -1 pads.

    >>> top_offers(np.array([[0.2, 0.9, -np.inf, 0.5]]), np.array([2]), 3).tolist()
    [[3, 0, -1]]
    """
    n, n_items = scores.shape
    masked = np.where(held_bits(held, n_items) > 0, -np.inf, scores)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(masked, order, axis=1)
    out = np.where(np.isfinite(picked), order, -1).astype(np.int64)
    if k > n_items:
        out = np.hstack([out, np.full((n, k - n_items), -1, dtype=np.int64)])
    return out


class Scorer(Protocol):
    @property
    def name(self) -> RankerName: ...

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        """n x items, higher first; -inf: not offered. `lacking_only`: the products a
        customer holds may be left -inf (offers need no more; a scorer may skip them)."""
        ...

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        """Why `item` is offered to customer `row`."""
        ...


@dataclass(frozen=True)
class PopularScorer:
    rates: FloatArray  # segments x items: holding rate in the segment
    name: RankerName = "popular"

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        found = self.rates[customers.segments]
        return np.where(found > 0, found, -np.inf)

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        rate = float(self.rates[customers.segments[row], item])
        return {"segment_rate": rate}


def popularity_rates(segments: Sequence[Sequence[tuple[int, float]]], n_items: int) -> FloatArray:
    """Segments x items holding rates from each segment's (item, rate) list."""
    rates = np.zeros((len(segments), n_items))
    for s, pairs in enumerate(segments):
        for item, rate in pairs:
            rates[s, item] = rate
    return rates


@dataclass(frozen=True)
class RulesScorer:
    """`recommend`'s offers first, in its order; then the other products the segment holds,
    by holding rate (a ranking needs them all; today's alerts take the first ones)."""

    rules: tuple[tuple[Rule, ...], ...]  # per segment, strongest first
    popularity: tuple[tuple[tuple[int, float], ...], ...]
    values: tuple[float, ...]  # the catalog's value weights, as the bundle's `recommend`
    name: RankerName = "rules"
    _matched: dict[tuple[int, int], dict[int, Rule]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _ranked(self, segment: int, held: int) -> tuple[Offer, ...]:
        return recommend(
            held,
            self.rules[segment],
            rank_popularity(self.popularity[segment], self.values),
            top_k=len(self.values),
            values=self.values,
        )

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        n = len(self.values)
        keys = np.column_stack([customers.segments.astype(np.int64), customers.held])
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        rates = popularity_rates(self.popularity, n)[unique[:, 0]]
        table = np.where(rates > 0, rates, -np.inf)
        all_mask = (1 << n) - 1
        for u, (segment, held) in enumerate(unique.tolist()):
            # A 64-product mask is stored as int64: bit 63 reads back as the sign.
            for rank, offer in enumerate(self._ranked(segment, held & all_mask)):
                table[u, offer.item] = float(2 + n - rank)  # above every rate (<= 1)
        return np.asarray(table[inverse.reshape(-1)], dtype=np.float64)

    def rule_for(self, segment: int, held: int, item: int) -> Rule | None:
        key = (segment, held)  # the stream explains many customers of the same holdings
        found = self._matched.get(key)
        if found is None:
            if len(self._matched) >= MAX_MATCHED:
                self._matched.clear()
            found = self._matched[key] = match_rules(held, self.rules[segment])
        return found.get(item)

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        segment = int(customers.segments[row])
        held = int(customers.held[row]) & ((1 << len(self.values)) - 1)
        for offer in self._ranked(segment, held):
            if offer.item == item:
                return {"rule": offer.rule, "fallback": offer.fallback, "score": offer.score}
        rate = dict(self.popularity[segment]).get(item, 0.0)
        return {"rule": None, "fallback": True, "score": rate}


@dataclass(frozen=True)
class ItemCFScorer:
    similarity: FloatArray  # items x items cosine, zero diagonal
    name: RankerName = "itemcf"

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        # Per row (einsum), so a customer scores the same in any batch.
        bits = held_bits(customers.held, len(self.similarity))
        return np.asarray(np.einsum("ij,jk->ik", bits, self.similarity), dtype=np.float64)

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        held = [i for i in range(len(self.similarity)) if customers.held[row] >> i & 1]
        similar = sorted(held, key=lambda i: (-self.similarity[i, item], i))[:TOP_SIMILAR]
        return {"similar": [(i, float(self.similarity[i, item])) for i in similar]}


def item_cosine(bits: FloatArray) -> FloatArray:
    """Cosine between the product columns of a customer x product 0/1 matrix, zero diagonal
    (a product never recommends itself); a product nobody holds is similar to nothing."""
    gram = bits.T @ bits
    norms = np.sqrt(np.diag(gram))
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(np.outer(norms, norms) > 0, gram / np.outer(norms, norms), 0.0)
    np.fill_diagonal(cosine, 0.0)
    return np.asarray(cosine, dtype=np.float64)


@dataclass(frozen=True)
class PropensityModels:
    """Per product, a classifier of "holds it" (None: everyone or no one held it, then
    `rates` is its probability); inputs are the profile fields, then one bit per product."""

    models: tuple[ScoringModel | None, ...]
    rates: tuple[float, ...]
    means: tuple[float, ...]  # training mean of each input, for the contributions
    input_names: tuple[str, ...]
    # The profile columns read (fields that mirror holdings, like a product count, are not).
    columns: tuple[int, ...]


@dataclass(frozen=True)
class PropensityScorer:
    spec: PropensityModels
    name: RankerName = "propensity"

    def rows(self, customers: Customers) -> FloatArray:
        n_items = len(self.spec.models)
        profile = customers.features[:, list(self.spec.columns)]
        return np.hstack([profile, held_bits(customers.held, n_items)])

    @cached_property
    def _tables(self) -> tuple[Cuts, dict[int, BoostingTables]]:
        """Gradient-boosting models as tables over one binning of every input."""
        boosting = {
            j: m.estimator
            for j, m in enumerate(self.spec.models)
            if m is not None and isinstance(m.estimator, BoostingModel)
        }
        cuts = Cuts.of(list(boosting.values()), len(self.spec.input_names))
        return cuts, {j: BoostingTables(model, cuts) for j, model in boosting.items()}

    @cached_property
    def _mean_bins(self) -> IntArray:
        """Each input's bin at its training mean: where `contributions` moves it to."""
        bins: IntArray = self._tables[0].bins(np.asarray([self.spec.means]))[0]
        return bins

    def inputs(self, customers: Customers) -> Inputs:
        rows = self.rows(customers)
        cuts, tables = self._tables
        bins = cuts.bins(rows) if tables else np.zeros((len(rows), 0), dtype=np.intp)
        return Inputs(customers, rows, bins)

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        return self.scores_of(self.inputs(customers), lacking_only=lacking_only)

    def scores_of(self, inputs: Inputs, *, lacking_only: bool = False) -> FloatArray:
        """P(holds it) per customer and product. `lacking_only`: each product only for the
        customers who lack it, the others -inf (offers need no more, and a customer holds
        about half the catalog)."""
        rows, bins = inputs.rows, inputs.bins
        width = len(self.spec.columns)
        cuts, tables = self._tables
        out = np.full((len(rows), len(self.spec.models)), -np.inf)
        if not lacking_only:  # each product's own bit is set to 0 below, then restored
            rows, bins = rows.copy(), bins.copy(order="K")  # bins stay by column
        for j in range(len(self.spec.models)):
            own = width + j
            if lacking_only:  # their own bit is 0 already, as in training
                at = np.flatnonzero(rows[:, own] == 0.0)
                out[at, j] = self._model_scores(j, rows[at], bins[at])
                continue
            # Each model was trained with its product's own bit at 0 (see training).
            kept = rows[:, own].copy()
            rows[:, own] = 0.0
            if j in tables:
                own_bins = bins[:, own].copy()
                bins[:, own] = cuts.bin_of(own, 0.0)
            out[:, j] = self._model_scores(j, rows, bins)
            if j in tables:
                bins[:, own] = own_bins
            rows[:, own] = kept
        return out

    def _model_scores(self, item: int, rows: FloatArray, bins: IntArray) -> FloatArray:
        """Product `item`'s model on `rows` (their own bit at 0) and their `Cuts.bins`."""
        model = self.spec.models[item]
        if model is None:
            return np.full(len(rows), self.spec.rates[item])
        tables = self._tables[1]
        if item in tables:
            return tables[item].predict(rows, bins)
        return np.asarray(model.estimator.predict(rows), dtype=np.float64)

    def _predict(self, item: int, rows: FloatArray) -> FloatArray:
        cuts, tables = self._tables
        if item in tables:
            return tables[item].predict(rows, cuts.bins(rows))
        return self.spec.models[item].estimator.predict(rows)  # type: ignore[union-attr]

    def contributions(
        self, rows: FloatArray, item: int, bins: IntArray | None = None
    ) -> FloatArray:
        """Per row and input: logit(p) - logit(p with that input at its training mean).
        `bins`: the rows' `Cuts.bins`, when the caller has them."""
        model = self.spec.models[item]
        if model is None:
            return np.zeros(rows.shape)
        means = np.asarray(self.spec.means)
        estimator = model.estimator
        if isinstance(estimator, LogisticModel):
            return np.asarray(
                (rows - means) / np.asarray(estimator.scale) * np.asarray(estimator.coef)
            )
        cuts, tables = self._tables
        if item in tables and not tables[item].walked:
            at = cuts.bins(rows) if bins is None else bins
            return tables[item].contributions(at, self._mean_bins)
        n, width = rows.shape
        variants = np.repeat(rows[:, None, :], width + 1, axis=1)
        idx = np.arange(width)
        variants[:, idx + 1, idx] = means
        p = np.clip(self._predict(item, variants.reshape(-1, width)), 1e-12, 1 - 1e-12)
        logit = np.log(p / (1 - p)).reshape(n, width + 1)
        return np.asarray(logit[:, :1] - logit[:, 1:])

    def explain(self, customers: Customers, items: IntArray) -> list[dict[str, Any]]:
        return self.explain_of(self.inputs(customers), items)

    def explain_of(self, inputs: Inputs, items: IntArray) -> list[dict[str, Any]]:
        """Evidence for offering `items[r]` to customer r, every row at once per product."""
        cuts, tables = self._tables
        rows, bins = inputs.rows, inputs.bins
        own = (np.arange(len(rows)), len(self.spec.columns) + items)
        held = np.flatnonzero(rows[own])
        if len(held):  # the product's own bit at 0, as in training (an offer never is held)
            rows, bins = rows.copy(), bins.copy(order="K")  # bins stay by column
            rows[own] = 0.0
            if tables:
                bins[held] = cuts.bins(rows[held])
        delta = np.zeros(rows.shape)
        for item in np.unique(items).tolist():
            at = np.flatnonzero(items == item)
            delta[at] = self.contributions(rows[at], item, bins[at] if tables else None)
        order = np.argsort(-delta, axis=1, kind="stable")[:, :TOP_INPUTS]
        names, models = self.spec.input_names, self.spec.models
        return [
            {
                "inputs": [(names[i], float(d[i])) for i in top.tolist() if d[i] > 0],
                "kind": None if models[item] is None else models[item].kind,  # type: ignore[union-attr]
            }
            for d, top, item in zip(delta, order, items.tolist(), strict=True)
        ]

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        return self.explain(customers.take(np.asarray([row])), np.asarray([item]))[0]


@dataclass(frozen=True)
class BlendScorer:
    propensity: PropensityScorer
    rules: RulesScorer
    name: RankerName = "blend"

    def inputs(self, customers: Customers) -> Inputs:
        return self.propensity.inputs(customers)

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        return self.propensity.scores(customers, lacking_only=lacking_only)

    def scores_of(self, inputs: Inputs, *, lacking_only: bool = False) -> FloatArray:
        return self.propensity.scores_of(inputs, lacking_only=lacking_only)

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        return self.explain(customers.take(np.asarray([row])), np.asarray([item]))[0]

    def explain(self, customers: Customers, items: IntArray) -> list[dict[str, Any]]:
        return self.explain_of(self.inputs(customers), items)

    def explain_of(self, inputs: Inputs, items: IntArray) -> list[dict[str, Any]]:
        found = self.propensity.explain_of(inputs, items)
        customers = inputs.customers
        for row, evidence in enumerate(found):
            segment, held = int(customers.segments[row]), int(customers.held[row])
            evidence["rule"] = self.rules.rule_for(segment, held, int(items[row]))
        return found


@dataclass(frozen=True)
class RankerSpec:
    """The ranker a bundle serves, as plain values, with the figures that chose it."""

    name: RankerName
    similarity: FloatArray | None = None  # itemcf
    propensity: PropensityModels | None = None  # propensity, blend
    figures: Mapping[str, Any] = field(default_factory=dict)


def scorer_for(
    spec: RankerSpec | None,
    rules: tuple[tuple[Rule, ...], ...],
    popularity: tuple[tuple[tuple[int, float], ...], ...],
    values: tuple[float, ...],
) -> Scorer:
    """The scorer of a bundle's ranker; a bundle without one serves its rules. `values`:
    the catalog's value weights (one per product)."""
    rules_scorer = RulesScorer(rules, popularity, values)
    n_items = len(values)
    if spec is None or spec.name == "rules":
        return rules_scorer
    if spec.name == "popular":
        return PopularScorer(popularity_rates(popularity, n_items))
    if spec.name == "itemcf" and spec.similarity is not None:
        return ItemCFScorer(spec.similarity)
    if spec.name in ("propensity", "blend") and spec.propensity is not None:
        scorer = PropensityScorer(spec.propensity)
        return scorer if spec.name == "propensity" else BlendScorer(scorer, rules_scorer)
    msg = f"ranker {spec.name!r} cannot be served from a bundle; expected one of {list(SERVABLE)}"
    raise ValueError(msg)


def needs_profile(scorer: Scorer) -> bool:
    """Whether offers depend on the profile beyond the segment (else they can be cached)."""
    return isinstance(scorer, PropensityScorer | BlendScorer)


def explain_offers(scorer: Scorer, customers: Customers, items: IntArray) -> list[dict[str, Any]]:
    """Evidence for offering `items[r]` to customer r: a profile ranker's for every row at
    once (the stream explains a batch's alerts together)."""
    if isinstance(scorer, PropensityScorer | BlendScorer):
        return scorer.explain(customers, items)
    return [scorer.evidence(customers, row, item) for row, item in enumerate(items.tolist())]


def rank_offers(scorer: Scorer, customers: Customers, *, top_k: int) -> list[tuple[Offer, ...]]:
    """Each customer's offers, best first, with their evidence."""
    scores = scorer.scores(customers)
    top = top_offers(scores, customers.held, top_k)
    rows, ranks = np.nonzero(top >= 0)
    items = top[rows, ranks]
    evidence = explain_offers(scorer, customers.take(rows), items)
    found: list[list[Offer]] = [[] for _ in range(len(customers))]
    for row, item, why in zip(rows.tolist(), items.tolist(), evidence, strict=True):
        found[row].append(offer_of(scorer, item, float(scores[row, item]), why))
    return [tuple(offers) for offers in found]


def offer_of(scorer: Scorer, item: int, score: float, evidence: dict[str, Any]) -> Offer:
    """An offer with its evidence: the rule stands beside the other evidence."""
    if isinstance(scorer, RulesScorer):
        return Offer(item, evidence["score"], evidence["rule"], evidence["fallback"])
    rule = evidence.pop("rule", None)
    return Offer(item, score, rule, False, {"ranker": scorer.name, **evidence})


def evidence_json(evidence: Mapping[str, Any], items: Sequence[str]) -> dict[str, Any]:
    """Evidence with product indices turned into names, for alerts and the API."""
    out = dict(evidence)
    if "similar" in out:
        out["similar_products"] = [
            {"product": items[i], "cosine": round(c, 4)} for i, c in out.pop("similar")
        ]
    if "inputs" in out:
        out["top_inputs"] = [
            {"input": name, "log_odds": round(d, 4)} for name, d in out.pop("inputs")
        ]
    return out
