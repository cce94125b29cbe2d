"""Segment assignment without scikit-learn: standardize, then the nearest centroid.

One implementation for a batch of customers and for one customer (a batch of one), so
the batch commands and the stream always agree, even on near ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MEMO_SIZE = 200_000  # remembered profiles, at most (~150 MB)


@dataclass(frozen=True, eq=False)
class SegmentModel:
    """A fitted standard scaler and KMeans centroids, as plain arrays."""

    features: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    centroids: FloatArray  # segments x features, in standardized space
    _memo: dict[tuple[float, ...], int] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SegmentModel)
            and self.features == other.features
            and all(
                np.array_equal(a, b)
                for a, b in (
                    (self.mean, other.mean),
                    (self.scale, other.scale),
                    (self.centroids, other.centroids),
                )
            )
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are not hashable

    @property
    def n_segments(self) -> int:
        return int(self.centroids.shape[0])

    def assign_segments(self, rows: FloatArray, *, chunk: int = 65_536) -> npt.NDArray[np.int64]:
        """Nearest centroid (squared Euclidean; ties go to the lower segment) for each row."""
        out = np.empty(len(rows), dtype=np.int64)
        for start in range(0, len(rows), chunk):
            z = (rows[start : start + chunk] - self.mean) / self.scale
            distances = np.stack(
                [np.square(z - centroid).sum(axis=1) for centroid in self.centroids], axis=1
            )
            out[start : start + chunk] = distances.argmin(axis=1)
        return out

    def assign_segment(self, row: Sequence[float]) -> int:
        """One customer's segment, remembered by profile: the stream asks for the same
        customers again and again, and a profile is a handful of small numbers.

        >>> m = SegmentModel(("a",), np.zeros(1), np.ones(1), np.array([[0.0], [10.0]]))
        >>> m.assign_segment([7.0])
        1
        """
        key = tuple(row)
        segment = self._memo.get(key)
        if segment is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            segment = int(self.assign_segments(np.asarray([row], dtype=np.float64))[0])
            self._memo[key] = segment
        return segment
