"""A simulated branch network that answers offers, to show what adaptive ranking gains.

Each segment × product has a hidden true acceptance probability. The ranker's offline
figure (what the bundle believes) is right about which products customers hold, not about
which offers they accept: the hidden probability is the offline figure times a product
appeal the ranker cannot see. The static policy offers the ranker's best product; the
adaptive one runs the engine's `rank_adaptively` (Beta prior on the offline figure,
Thompson draws, counts updated after every outcome); the oracle offers the truly best.
Regret is the oracle's expected acceptances minus the policy's, summed over alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules_store.domain.acceptance import (
    AdaptivePolicy,
    ArmKey,
    Candidate,
    Tally,
    rank_adaptively,
)

VERSION = "simulated"


@dataclass(frozen=True)
class World:
    offline: np.ndarray  # segment × product: the ranker's probability
    truth: np.ndarray  # segment × product: the hidden acceptance probability
    products: tuple[str, ...]


def make_world(segments: int, products: int, seed: int) -> World:
    rng = np.random.default_rng(seed)
    offline = rng.uniform(0.05, 0.6, size=(segments, products))
    appeal = rng.uniform(0.1, 1.0, size=products)  # unseen by the ranker
    return World(offline, offline * appeal, tuple(f"p{i}" for i in range(products)))


@dataclass(frozen=True)
class Run:
    policy: str
    accepted: int
    alerts: int
    regret: np.ndarray  # cumulative expected regret after each alert
    hits: np.ndarray  # cumulative acceptances after each alert

    @property
    def rate(self) -> float:
        return self.accepted / self.alerts


def simulate(world: World, *, alerts: int, seed: int, policy: str) -> Run:
    """`policy` is `static`, `adaptive` or `oracle`; the same seed gives the same customers."""
    rng = np.random.default_rng(seed)
    segments = rng.integers(0, world.offline.shape[0], size=alerts)
    luck = rng.random(alerts)  # one uniform per alert: every policy faces the same luck
    book: dict[ArmKey, Tally] = {}
    adaptive = AdaptivePolicy()
    regret = np.empty(alerts)
    hits = np.empty(alerts, dtype=np.int64)
    lost = 0.0
    accepted = 0
    for i, segment in enumerate(segments):
        s = int(segment)
        if policy == "oracle":
            choice = int(np.argmax(world.truth[s]))
        elif policy == "static":
            choice = int(np.argmax(world.offline[s]))
        else:
            candidates = [
                Candidate(name, float(world.offline[s, j]), adaptive.prior_mean)
                for j, name in enumerate(world.products)
            ]
            best = rank_adaptively(
                candidates,
                book=book,
                version=VERSION,
                segment=s,
                policy=adaptive,
                trigger=f"alert-{seed}-{i}",
            )[0]
            choice = world.products.index(best.product)
        p = world.truth[s, choice]
        took = bool(luck[i] < p)
        accepted += took
        key = ArmKey(VERSION, s, world.products[choice])
        book[key] = book.get(key, Tally()).add("accepted" if took else "declined")
        lost += float(world.truth[s].max() - p)
        regret[i] = lost
        hits[i] = accepted
    return Run(policy, accepted, alerts, regret, hits)
