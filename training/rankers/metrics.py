"""Ranking metrics over top-k offers and sets of relevant products (bitmasks).

Definitions (those of ranx and of the Santander competition's MAP@7), for one customer
with relevant set R and offers o_1..o_k (fewer when the ranker offers fewer):
- HR@k: 1 when some o_i (i <= k) is in R;
- AP@k: sum over i <= k of precision@i x [o_i in R], divided by min(|R|, k);
- NDCG@k: sum of [o_i in R] / log2(i + 1), divided by the same for a perfect ranking.
Means are over customers with a non-empty R, unless `over_all`: then a customer with
nothing relevant counts 0 (the Santander leaderboard's "over all customers").
tests/unit/test_ranker_metrics.py holds these to ranx on random rankings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
KS = (1, 3, 7)


def relevance(top: IntArray, truth: IntArray) -> npt.NDArray[np.float64]:
    """n x k: 1 where the offer at that rank is relevant."""
    safe = np.maximum(top, 0)
    return np.where(top >= 0, (truth[:, None] >> safe) & 1, 0).astype(np.float64)


def sizes(truth: IntArray) -> IntArray:
    return np.asarray([int(t).bit_count() for t in truth.tolist()], dtype=np.int64)


def metric_rows(top: IntArray, truth: IntArray, k: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per customer: HR@k, AP@k, NDCG@k."""
    rel = relevance(top[:, :k], truth)
    width = rel.shape[1]
    ranks = np.arange(1, width + 1)
    n_rel = sizes(truth)
    precision = np.cumsum(rel, axis=1) / ranks
    denominator = np.minimum(n_rel, k)
    ap = (precision * rel).sum(axis=1) / np.where(denominator > 0, denominator, 1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (rel * discounts[:width]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.maximum(denominator, 1) - 1]
    return {
        f"HR@{k}": rel.any(axis=1).astype(np.float64),
        f"MAP@{k}": ap,
        f"NDCG@{k}": np.where(denominator > 0, dcg / ideal, 0.0),
    }


def ranking_metrics(
    top: IntArray, truth: IntArray, *, ks: tuple[int, ...] = KS, over_all: bool = False
) -> dict[str, float]:
    """Mean HR@k, MAP@k, NDCG@k (see the module docstring for the denominators)."""
    keep = truth != 0 if not over_all else np.ones(len(truth), dtype=bool)
    out: dict[str, float] = {}
    for k in ks:
        for name, values in metric_rows(top[keep], truth[keep], k).items():
            out[name] = float(values.mean()) if values.size else 0.0
    return out


def coverage(top: IntArray, n_items: int, k: int = 3) -> float:
    """Share of the catalog offered to someone in a top k."""
    offered = np.unique(top[:, :k])
    return float((offered >= 0).sum() / n_items)


def with_offer(top: IntArray) -> float:
    """Share of customers with at least one offer."""
    return float((top[:, 0] >= 0).mean()) if len(top) else 0.0


def per_product(top: IntArray, truth: IntArray, n_items: int, k: int) -> list[dict[str, float]]:
    """Per product: precision@k (offered in the top k and relevant / offered) and
    recall@k (relevant and offered in the top k / relevant)."""
    out = []
    head = top[:, :k]
    for item in range(n_items):
        offered = (head == item).any(axis=1)
        relevant = ((truth >> item) & 1).astype(bool)
        hits = int((offered & relevant).sum())
        out.append(
            {
                "offered": int(offered.sum()),
                "relevant": int(relevant.sum()),
                "precision": hits / int(offered.sum()) if offered.any() else 0.0,
                "recall": hits / int(relevant.sum()) if relevant.any() else 0.0,
            }
        )
    return out


def gain_curve(
    scores: npt.NDArray[np.float64],
    eligible: npt.NDArray[np.bool_],
    relevant: npt.NDArray[np.bool_],
    points: int = 50,
) -> list[tuple[float, float]]:
    """Cumulative gain of targeting one product by score: (share of eligible customers
    targeted, share of its relevant customers reached), best scores first."""
    s, r = scores[eligible], relevant[eligible]
    total = int(r.sum())
    if s.size == 0 or total == 0:
        return [(0.0, 0.0), (1.0, 1.0)]
    order = np.argsort(-s, kind="stable")
    reached = np.cumsum(r[order]) / total
    at = np.unique(np.linspace(0, s.size - 1, points).astype(np.int64))
    return [(0.0, 0.0), *((float((i + 1) / s.size), float(reached[i])) for i in at)]
