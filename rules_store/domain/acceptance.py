"""How often an offer is accepted, learned from outcomes: Beta posteriors and Thompson draws.

Counts are kept per (bundle version, segment, product), so they cost O(segments × products)
whatever the number of customers. A product's prior is a Beta centred on the offline
figure the bundle gives it (the ranker's mean probability in the segment, or the rule's
confidence) with `strength` pseudo-outcomes: a new product starts at what training
believes, and a few real outcomes move it.

Accepted outcomes and inferred conversions are successes; declined and ignored offers are
failures. The adaptive score is the ranker's probability times a draw from the posterior
(Thompson sampling: uncertain products get tried), or times the posterior mean when
sampling is off. The draw comes from a hash of what triggered the alert and the product,
so a re-sent alert draws the same number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from scipy.special import betaincinv

Outcome = Literal["accepted", "declined", "ignored"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "declined", "ignored")


class ArmKey(NamedTuple):
    """What acceptance is counted by."""

    bundle_version: str
    segment: int
    product: str


@dataclass(frozen=True)
class Tally:
    accepted: int = 0
    declined: int = 0
    ignored: int = 0
    sent: int = 0  # offers sent; those not settled yet are pending

    @property
    def settled(self) -> int:
        return self.accepted + self.declined + self.ignored

    def add(self, outcome: Outcome, n: int = 1) -> Tally:
        return Tally(
            self.accepted + n * (outcome == "accepted"),
            self.declined + n * (outcome == "declined"),
            self.ignored + n * (outcome == "ignored"),
            self.sent,
        )

    def offered(self, n: int = 1) -> Tally:
        return Tally(self.accepted, self.declined, self.ignored, self.sent + n)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.accepted + other.accepted,
            self.declined + other.declined,
            self.ignored + other.ignored,
            self.sent + other.sent,
        )


def merge_tallies(books: Iterable[Mapping[ArmKey, Tally]]) -> dict[ArmKey, Tally]:
    """One book from several (one per partition): counts add up.

    >>> k = ArmKey("v1", 0, "国债")
    >>> merge_tallies([{k: Tally(1, 2, 0)}, {k: Tally(3, 0, 1)}])[k]
    Tally(accepted=4, declined=2, ignored=1, sent=0)
    """
    merged: dict[ArmKey, Tally] = {}
    for book in books:
        for key, tally in book.items():
            merged[key] = merged.get(key, Tally()) + tally
    return merged


@dataclass(frozen=True)
class PartitionBook:
    """One input partition's counts and, per source ("topic:partition"), the last event
    offset counted: an event is counted once, whatever the order in which a crash left the
    counts and the customers' states in the changelog."""

    book: Mapping[ArmKey, Tally] = field(default_factory=dict)
    positions: Mapping[str, int] = field(default_factory=dict)

    def count(
        self,
        source: str,
        offset: int,
        sent: Iterable[ArmKey],
        settled: Iterable[tuple[ArmKey, Outcome]],
    ) -> PartitionBook | None:
        """The book with one event's offers and outcomes, or None when it counted them already."""
        if self.positions.get(source, -1) >= offset:
            return None
        book = dict(self.book)
        for key in sent:
            book[key] = book.get(key, Tally()).offered()
        for key, outcome in settled:
            book[key] = book.get(key, Tally()).add(outcome)
        return PartitionBook(book, {**self.positions, source: offset})


@dataclass(frozen=True)
class AdaptivePolicy:
    """`XSELL_ADAPTIVE`, `XSELL_THOMPSON` and `XSELL_PRIOR_STRENGTH` in the settings."""

    enabled: bool = True
    thompson: bool = True
    prior_strength: float = 20.0  # pseudo-outcomes behind the prior
    prior_mean: float = 0.1  # the acceptance rate assumed before any outcome


class Beta(NamedTuple):
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


# Keeps a prior of 0 or 1 (a rule with confidence 1.0) learnable: the posterior can move.
_PRIOR_CLIP = 1e-3


def posterior(prior_mean: float, tally: Tally, *, strength: float) -> Beta:
    """The Beta posterior of acceptance after `tally`, from a prior centred on `prior_mean`.

    >>> posterior(0.2, Tally(accepted=8, declined=2), strength=10).mean
    0.5
    """
    mean = min(max(prior_mean, _PRIOR_CLIP), 1 - _PRIOR_CLIP)
    return Beta(
        mean * strength + tally.accepted,
        (1 - mean) * strength + tally.declined + tally.ignored,
    )


def draw_uniform(*parts: str) -> float:
    """A uniform number in (0, 1) from text (an alert's trigger and product): same text, same number."""
    n = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
    return (n + 0.5) / 2**64


def acceptance_factor(belief: Beta, *, uniform: float, thompson: bool) -> float:
    """A Thompson draw from `belief`, or its mean when sampling is off.

    The draw is the Beta's quantile at `uniform` (inverse transform): one number per alert
    and product, no random generator to seed (a seeded numpy generator costs 7 µs a draw).

    >>> b = Beta(2.0, 8.0)
    >>> round(acceptance_factor(b, uniform=0.5, thompson=True), 4)
    0.1796
    >>> acceptance_factor(b, uniform=0.5, thompson=False)
    0.2
    """
    if not thompson:
        return belief.mean
    return float(betaincinv(belief.alpha, belief.beta, uniform))


class Candidate(NamedTuple):
    """A product the ranker offers, its probability, and the prior's centre for it."""

    product: str
    probability: float
    prior_mean: float


class AdaptiveScore(NamedTuple):
    product: str
    score: float  # the ranker's probability × the acceptance factor
    factor: float
    belief: Beta


def rank_adaptively(
    candidates: Iterable[Candidate],
    *,
    book: Mapping[ArmKey, Tally],
    version: str,
    segment: int,
    policy: AdaptivePolicy,
    trigger: str,
) -> list[AdaptiveScore]:
    """The candidates by adaptive score, best first (ties keep the ranker's order).

    `trigger` names what caused the alert (customer and event id): with the product it
    seeds the draw, so a replay of the same event ranks the same way.

    >>> cands = [Candidate("a", 0.5, 0.5), Candidate("b", 0.4, 0.5)]
    >>> book = {ArmKey("v", 0, "a"): Tally(declined=200), ArmKey("v", 0, "b"): Tally(accepted=200)}
    >>> [s.product for s in rank_adaptively(cands, book=book, version="v", segment=0,
    ...     policy=AdaptivePolicy(thompson=False), trigger="c1/e1")]
    ['b', 'a']
    """
    scored = []
    for candidate in candidates:
        tally = book.get(ArmKey(version, segment, candidate.product), Tally())
        belief = posterior(candidate.prior_mean, tally, strength=policy.prior_strength)
        factor = acceptance_factor(
            belief, uniform=draw_uniform(trigger, candidate.product), thompson=policy.thompson
        )
        scored.append(
            AdaptiveScore(candidate.product, candidate.probability * factor, factor, belief)
        )
    return sorted(scored, key=lambda s: -s.score)
