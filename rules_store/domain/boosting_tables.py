"""Gradient-boosting trees as lookup tables: every tree of a model over a whole batch.

Walking 60 trees node by node for each of 8 products costs numpy calls per tree level;
at a million customers that took minutes. Here each input's thresholds (over every tree
of every model) cut its values into bins once per batch (`np.searchsorted`), and each
tree becomes a table over the bins of the few inputs it reads: a row's cell is a sum of
small lookups, its leaf value one more. A split `x <= t` is `bin(x) <= index of t`
exactly (a bin counts the thresholds below x), so a row reaches the walker's leaf, and
the leaf values are added in tree order from the baseline as the walker (and
scikit-learn) add them: the probabilities are the walker's, bit for bit.

Every tree of a model is looked up at once (one gather over trees x inputs, not a numpy
call per tree), which is what makes a stream batch of a few hundred customers cheap; the
leaf values are still added in tree order (`np.cumsum` is sequential, unlike `sum`).

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
CHUNK = 8_192  # rows per pass: the rows x trees x inputs gather stays small


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

    def bins(self, rows: FloatArray) -> IntArray:
        """Per row and column, its bin: how many thresholds lie below its value; one more
        column of zeros at the end (what a tree reading fewer inputs pads with)."""
        out = np.zeros((len(rows), len(self.thresholds) + 1), dtype=np.intp)
        for c, ts in enumerate(self.thresholds):
            if len(ts):
                out[:, c] = np.searchsorted(ts, rows[:, c], side="left")
        return out

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
        found = [t for t in self.tables if t is not None]
        width = max((len(t.columns) for t in found), default=1) or 1
        n_bins = max((len(o) for t in found for o in t.offsets), default=1)
        pad = len(cuts.thresholds)  # the zeros column of `Cuts.bins`
        # Per tree and input slot: the column read, and its global bin -> cell offset.
        self.columns = np.full((len(self.tables), width), pad, dtype=np.intp)
        self.offsets = np.zeros((len(self.tables), width, n_bins), dtype=np.intp)
        starts: list[int] = []  # each tree's cells, one after another in `values`
        values: list[FloatArray] = []
        for t, table in enumerate(self.tables):
            starts.append(sum(len(v) for v in values))
            if table is None:
                values.append(np.zeros(1))
                continue
            for k, (column, offsets) in enumerate(zip(table.columns, table.offsets, strict=True)):
                self.columns[t, k] = column
                self.offsets[t, k, : len(offsets)] = offsets
            values.append(table.values)
        self.starts = np.asarray(starts, dtype=np.intp)
        self.values = np.concatenate(values) if values else np.zeros(0)
        self.walked = [t for t, table in enumerate(self.tables) if table is None]
        # Per tree and slot, which input column it is: sums a tree's change into its input.
        self.reads = np.zeros((len(self.tables), width, pad + 1))
        self.reads[
            np.arange(len(self.tables))[:, None], np.arange(width)[None, :], self.columns
        ] = 1.0

    def predict(self, rows: FloatArray, bins: IntArray) -> FloatArray:
        """`rows` and their `Cuts.bins`; the same probabilities as `model.predict(rows)`."""
        n_trees, width = self.columns.shape
        raw = np.empty(len(rows))
        trees, slots = np.arange(n_trees)[:, None], np.arange(width)[None, :]
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            cells = self.offsets[trees, slots, bins[part][:, self.columns]].sum(axis=2)
            leaves = np.empty((len(cells), n_trees + 1))
            leaves[:, 0] = self.model.baseline
            leaves[:, 1:] = self.values[self.starts + cells]
            for t in self.walked:
                leaves[:, t + 1] = self.model.trees[t].predict(rows[part])
            raw[part] = np.cumsum(leaves, axis=1)[:, -1]  # in tree order, as the walker adds
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)

    def contributions(self, bins: IntArray, moved_to: IntArray) -> FloatArray:
        """Per row and input: the log-odds (the raw score) minus the log-odds with that input
        in bin `moved_to[input]`. Only the trees that read an input change with it, so this
        is one gather, not a model evaluation per input; for models with no walked tree."""
        n_trees, width = self.columns.shape
        trees, slots = np.arange(n_trees)[:, None], np.arange(width)[None, :]
        moved_offsets = self.offsets[trees, slots, moved_to[self.columns]]  # trees x slots
        out = np.empty((len(bins), self.reads.shape[2]))
        for start in range(0, len(bins), CHUNK):
            part = slice(start, start + CHUNK)
            offsets = self.offsets[trees, slots, bins[part][:, self.columns]]
            cells = offsets.sum(axis=2)[:, :, None]
            starts = self.starts[:, None]
            moved = self.values[starts + cells - offsets + moved_offsets]
            change = self.values[starts + cells] - moved
            out[part] = np.einsum("ntk,tkc->nc", change, self.reads)  # per row, any batch
        return out[:, :-1]
