"""User-based collaborative filtering: the k customers most like this one, by cosine
over the standardized profile and holdings; a product's score is the similarity-weighted
share of those neighbours who hold it (seed 004's formula with cosine weights).

The index, and why: exact cosine search among a fixed reference pool of customers in the
same segment, sampled at random from the training customers (`pool`, 20,000 by default),
computed block by block as float32 matrix products with `argpartition` for the top k.
Exact search over all customers costs n^2 (10^12 pairs at 1M); an approximate index
(HNSW, IVF) is a compiled dependency whose answers depend on build order and threads.
The pool makes a query cost pool/segments dot products whatever the data size, is plain
numpy, and is deterministic; `bench/rankers.py` measures how its MAP@7 compares with
an exact search over every training customer of the segment on a smaller sample.
usercf is evaluated, not served: it would need customers' rows in the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rules_store.domain.ranking import Customers, FloatArray, RankerName, held_bits

BLOCK = 2_048


def unit_vectors(
    customers: Customers, columns: tuple[int, ...], mean: FloatArray, scale: FloatArray
) -> FloatArray:
    """Standardized profile and holdings, scaled to unit length (cosine = dot product)."""
    n_items = len(mean) - len(columns)
    rows = np.hstack([customers.features[:, list(columns)], held_bits(customers.held, n_items)])
    z = ((rows - mean) / scale).astype(np.float32)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.asarray(z / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class UserCFScorer:
    mean: FloatArray
    scale: FloatArray
    pool: FloatArray  # unit vectors, float32, rows of pool customers
    pool_bits: FloatArray  # their holdings, 0/1 float32
    pool_segments: np.ndarray
    n_items: int
    k: int
    columns: tuple[int, ...]
    name: RankerName = "usercf"

    def neighbours(self, customers: Customers) -> tuple[np.ndarray, np.ndarray]:
        """Pool row indices (n x k, -1 when the segment has fewer) and their cosines."""
        vectors = unit_vectors(customers, self.columns, self.mean, self.scale)
        index = np.full((len(customers), self.k), -1, dtype=np.int64)
        cosines = np.zeros((len(customers), self.k), dtype=np.float32)
        for segment in np.unique(customers.segments).tolist():
            members = np.flatnonzero(self.pool_segments == segment)
            rows = np.flatnonzero(customers.segments == segment)
            if members.size == 0:
                continue
            k = min(self.k, members.size)
            pool = self.pool[members]
            for start in range(0, rows.size, BLOCK):
                block = rows[start : start + BLOCK]
                sims = vectors[block] @ pool.T
                best = (
                    np.argpartition(-sims, k - 1, axis=1)[:, :k]
                    if k < members.size
                    else (np.broadcast_to(np.arange(members.size), (block.size, k)))
                )
                index[block, :k] = members[best]
                cosines[block, :k] = np.take_along_axis(sims, best, axis=1)
        return index, cosines

    def scores(self, customers: Customers, *, lacking_only: bool = False) -> FloatArray:
        index, cosines = self.neighbours(customers)
        weights = np.where(index >= 0, np.maximum(cosines, 0.0), 0.0)
        bits = self.pool_bits[np.maximum(index, 0)]  # n x k x items
        total = weights.sum(axis=1, keepdims=True)
        score = np.einsum("nk,nki->ni", weights, bits) / np.where(total > 0, total, 1.0)
        return np.asarray(score, dtype=np.float64)

    def evidence(self, customers: Customers, row: int, item: int) -> dict[str, Any]:
        index, _ = self.neighbours(customers.take(np.asarray([row])))
        holders = index[0] >= 0
        share = float(self.pool_bits[index[0][holders], item].mean()) if holders.any() else 0.0
        return {"neighbours": int(holders.sum()), "neighbours_holding": share}


def fit_usercf(
    customers: Customers,
    n_items: int,
    columns: tuple[int, ...],
    *,
    k: int = 50,
    pool: int = 20_000,
    seed: int = 7,
) -> UserCFScorer:
    rows = np.hstack([customers.features[:, list(columns)], held_bits(customers.held, n_items)])
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale == 0] = 1.0
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(rows), size=min(pool, len(rows)), replace=False))
    sample = customers.take(chosen)
    return UserCFScorer(
        mean,
        scale,
        unit_vectors(sample, columns, mean, scale),
        held_bits(sample.held, n_items).astype(np.float32),
        sample.segments,
        n_items,
        k,
        columns,
    )
