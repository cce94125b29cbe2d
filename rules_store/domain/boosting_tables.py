"""Gradient-boosting trees as lookup tables: every tree of a model over a whole batch.

Walking 60 trees node by node for each of 8 products costs numpy calls per tree level;
at a million customers that took minutes. Here each input's thresholds (over every tree
of every model) cut its values into bins once per batch (`np.searchsorted`), and each
tree becomes a table over the bins of the few inputs it reads: a row's cell is a sum of
small lookups, its leaf value one more. A split `x <= t` is `bin(x) <= index of t`
exactly (a bin counts the thresholds below x), so a row reaches the walker's leaf, and
the leaf values are added in tree order from the baseline as the walker (and
scikit-learn) add them: the probabilities are the walker's, bit for bit.

A tree with s splits has at most 2^s cells (16,384 for 15 leaves); one whose table
would pass `MAX_CELLS` is walked instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules_store.domain.scoring import BoostingModel, Tree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
MAX_CELLS = 1 << 16
CHUNK = 32_768  # rows per pass: the index and value arrays stay in cache


def _splits(tree: Tree) -> dict[int, FloatArray]:
    """Per input the tree reads, its sorted distinct thresholds."""
    found: dict[int, set[float]] = {}
    for f, t, left in zip(tree.feature, tree.threshold, tree.left, strict=True):
        if left >= 0:
            found.setdefault(f, set()).add(t)
    return {f: np.sort(np.fromiter(ts, float)) for f, ts in sorted(found.items())}


@dataclass(frozen=True)
class Cuts:
    """Per input column, the sorted distinct thresholds of every tree that reads it."""

    thresholds: tuple[FloatArray, ...]

    @classmethod
    def of(cls, models: Sequence[BoostingModel], width: int) -> Cuts:
        found: list[set[float]] = [set() for _ in range(width)]
        for model in models:
            for tree in model.trees:
                for f, ts in _splits(tree).items():
                    found[f].update(ts.tolist())
        return cls(tuple(np.sort(np.fromiter(ts, float)) for ts in found))

    def bins(self, rows: FloatArray) -> list[IntArray]:
        """Per column, each row's bin: how many thresholds lie below its value."""
        return [
            np.searchsorted(ts, rows[:, c], side="left") if len(ts) else np.zeros(0, np.intp)
            for c, ts in enumerate(self.thresholds)
        ]

    def bin_of(self, column: int, value: float) -> int:
        return int(np.searchsorted(self.thresholds[column], value, side="left"))


@dataclass(frozen=True)
class _Table:
    columns: tuple[int, ...]  # the inputs the tree reads
    offsets: tuple[IntArray, ...]  # per input: global bin -> its local bin x stride
    values: FloatArray  # cell -> leaf value


def _table(tree: Tree, cuts: Cuts) -> _Table | None:
    local = _splits(tree)
    sizes = [len(ts) + 1 for ts in local.values()]
    cells = int(np.prod(sizes)) if sizes else 1
    if cells > MAX_CELLS:
        return None
    columns = tuple(local)
    strides = [int(np.prod(sizes[k + 1 :])) for k in range(len(sizes))]  # row-major
    grid = np.indices(sizes).reshape(len(sizes), cells)
    # A representative row per cell: a local bin j holds values in (t[j-1], t[j]], so
    # t[j] stands for it; the last bin (above every threshold) is +inf.
    rows = np.zeros((cells, max(columns, default=0) + 1))
    offsets = []
    for k, c in enumerate(columns):
        ts = local[c]
        rows[:, c] = np.append(ts, np.inf)[grid[k]]
        # Global bin g holds values in (G[g-1], G[g]]: the tree's thresholds below them
        # are its thresholds below G[g] (they are among G).
        edges = np.append(cuts.thresholds[c], np.inf)
        offsets.append(np.searchsorted(ts, edges, side="left").astype(np.intp) * strides[k])
    values = tree.predict(rows) if columns else np.full(cells, tree.value[0])
    return _Table(columns, tuple(offsets), np.asarray(values, dtype=np.float64))


class BoostingTables:
    """`BoostingModel.predict` from binned rows; trees too large for a table are walked."""

    def __init__(self, model: BoostingModel, cuts: Cuts) -> None:
        self.model = model
        self.tables = [_table(tree, cuts) for tree in model.trees]

    def predict(self, rows: FloatArray, bins: Sequence[IntArray]) -> FloatArray:
        """`rows` and their `Cuts.bins`; the same probabilities as `model.predict(rows)`."""
        raw = np.zeros(len(rows)) + self.model.baseline
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            acc = raw[part]
            for tree, table in zip(self.model.trees, self.tables, strict=True):
                if table is None:
                    acc += tree.predict(rows[part])
                    continue
                cell = table.offsets[0].take(bins[table.columns[0]][part]) if table.columns else 0
                for offsets, column in zip(table.offsets[1:], table.columns[1:], strict=True):
                    cell += offsets.take(bins[column][part])
                acc += table.values.take(cell)
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)
