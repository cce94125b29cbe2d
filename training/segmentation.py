"""Customer segments: standardize, KMeans with a given k or the best silhouette over a range.

KMeans is fitted on a fixed-seed sample (scaler statistics use every row); every
customer is then assigned with the bundle's own nearest-centroid function, so batch and
stream segments are the same by construction. Segments are renumbered by size, largest
first, so that segment 0 is the same group from run to run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score

from rules_store.domain.segments import SegmentModel
from rules_store.errors import XsellError

AUTO_RANGE = range(2, 9)


class SegmentationError(XsellError, ValueError):
    """Segmentation cannot run with these parameters and data."""


@dataclass
class SegmentationResult:
    model: SegmentModel
    labels: npt.NDArray[np.int64]
    sizes: list[int]
    silhouette: dict[int, float] = field(default_factory=dict)  # k -> score (auto only)
    fit_rows: int = 0


def _kmeans(k: int, seed: int, n_init: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed)


def fit_segments(
    features: npt.NDArray[np.float64],
    names: tuple[str, ...],
    *,
    k: int | None,
    seed: int = 7,
    fit_sample: int = 200_000,
    silhouette_sample: int = 4_000,
    on_step: Callable[[str], None] = lambda _: None,
) -> SegmentationResult:
    """`k=None` picks k in 2..8 by the silhouette score on a sample."""
    n = len(features)
    if k is not None and not 1 <= k <= n:
        msg = f"--segments {k}: needs 1 <= k <= number of customers ({n})"
        raise SegmentationError(msg)
    if n < 2:
        msg = f"segmentation needs at least 2 customers; got {n}"
        raise SegmentationError(msg)
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature carries no distance (as StandardScaler does)
    rng = np.random.default_rng(seed)
    sample_rows = np.sort(rng.choice(n, size=min(n, fit_sample), replace=False))
    sample = (features[sample_rows] - mean) / scale

    silhouette: dict[int, float] = {}
    with warnings.catch_warnings():
        # Duplicate points can leave fewer distinct clusters than k; the sizes report it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if k is None:
            probe = sample[: min(len(sample), 20_000)]
            scored = probe[: min(len(probe), silhouette_sample)]
            for candidate in AUTO_RANGE:
                if candidate >= len(probe):
                    break
                on_step(f"k={candidate}")
                fitted = _kmeans(candidate, seed, 2).fit(probe)
                labels = fitted.predict(scored)
                if len(set(labels.tolist())) > 1:
                    silhouette[candidate] = float(
                        silhouette_score(scored, labels, random_state=seed)
                    )
            if not silhouette:
                msg = "could not pick k automatically: the data has fewer than 2 distinct groups"
                raise SegmentationError(msg)
            k = max(silhouette, key=lambda c: (silhouette[c], -c))
        on_step(f"fit k={k}")
        centroids = _kmeans(k, seed, 5).fit(sample).cluster_centers_

    model = SegmentModel(names, mean, scale, np.asarray(centroids, dtype=np.float64))
    labels = model.assign_segments(features)
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(-sizes, kind="stable")  # largest segment first
    model = SegmentModel(names, mean, scale, model.centroids[order])
    relabel = np.empty_like(order)
    relabel[order] = np.arange(k)
    labels = relabel[labels]
    return SegmentationResult(model, labels, sizes[order].tolist(), silhouette, len(sample_rows))
