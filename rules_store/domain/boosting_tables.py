"""Gradient-boosting trees as lookup tables: every tree of a model over a whole batch.

Walking a model's trees node by node for each of 8 products costs numpy calls per tree level;
at a million customers that took minutes. Here each input's thresholds (over every tree
of every model) cut its values into bins once per batch (`np.searchsorted`), and each
tree becomes a table over the bins of the few inputs it reads: a row's cell is a sum of
small lookups, its leaf value one more. A split `x <= t` is `bin(x) <= index of t`
exactly (a bin counts the thresholds below x), so a row reaches the walker's leaf, and
the leaf values are added in tree order from the baseline as the walker (and
scikit-learn) add them: the probabilities are the walker's, bit for bit.

An input's contribution to the log-odds needs only the trees that read it: over the
(tree, input) pairs laid flat, every row's change for every input is a few numpy calls
per model (`contributions`), which keeps explaining a stream batch's offers cheap.

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
# Up to this many rows, every tree at once (`_predict_flat`); more, a tree at a time, whose
# few passes over whole columns win once the numpy calls per tree are paid (measured: equal
# at 500 rows, 7x faster flat at 50, 2.6x slower flat at 5,000).
FLAT_ROWS = 512


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
        # Column-major: a tree reads a column of bins at a time.
        out = np.zeros((len(self.thresholds) + 1, len(rows)), dtype=np.intp).T
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
    """`BoostingModel.predict` from binned rows: a stream batch's few rows with every tree
    in one gather over the (tree, input) pairs laid flat, larger batches a tree at a time
    (see FLAT_ROWS); trees too large for a table are walked. `contributions` uses the same
    flat pairs."""

    def __init__(self, model: BoostingModel, cuts: Cuts) -> None:
        self.model = model
        self.tables = [_table(tree, cuts) for tree in model.trees]
        pad = len(cuts.thresholds)  # the zeros column of `Cuts.bins`
        columns: list[int] = []  # per pair: the input it reads
        bases: list[int] = []  # per pair: where its bin -> cell offsets start in `offsets`
        offsets: list[IntArray] = []
        firsts: list[int] = []  # per tree: its first pair
        starts: list[int] = []  # per tree: where its cells start in `values`
        values: list[FloatArray] = []
        for table in self.tables:
            firsts.append(len(columns))
            starts.append(sum(len(v) for v in values))
            # A tree without a table, or reading no input, gets one pair that adds nothing.
            read = list(zip(table.columns, table.offsets, strict=True)) if table else []
            for column, steps in read or [(pad, np.zeros(1, dtype=np.intp))]:
                columns.append(column)
                bases.append(sum(len(o) for o in offsets))
                offsets.append(steps)
            values.append(table.values if table else np.zeros(1))
        self.columns = np.asarray(columns, dtype=np.intp)
        self.bases = np.asarray(bases, dtype=np.intp)
        self.offsets = np.concatenate(offsets).astype(np.intp)
        self.firsts = np.asarray(firsts, dtype=np.intp)
        self.pair_tree = np.repeat(np.arange(len(self.tables)), np.diff([*firsts, len(columns)]))
        self.starts = np.asarray(starts, dtype=np.intp)
        self.values = np.concatenate(values)
        self.walked = [t for t, table in enumerate(self.tables) if table is None]
        # The pairs ordered by input, and where each input read by some tree starts: an
        # input's change is a sum over its pairs in this one order, the same in any batch.
        self.by_input = np.argsort(self.columns, kind="stable")
        ends = np.searchsorted(self.columns[self.by_input], np.arange(pad), "right")
        starts_at = np.concatenate([[0], ends[:-1]]).astype(np.intp)
        self.read = np.flatnonzero(ends > starts_at)  # the inputs some tree reads
        self.read_starts = starts_at[self.read]
        self.inputs = pad

    def _steps(self, bins: IntArray) -> tuple[IntArray, IntArray]:
        """Per pair and row (rows of `Cuts.bins` across), the pair's step, and per tree and
        row its cell (integer sums: exact); laid by pair, so each call covers a batch."""
        by_input = np.ascontiguousarray(bins.T)  # a row of bins per input
        steps = self.offsets.take(by_input[self.columns] + self.bases[:, None])
        return steps, np.add.reduceat(steps, self.firsts, axis=0)

    def predict(self, rows: FloatArray, bins: IntArray) -> FloatArray:
        """`rows` and their `Cuts.bins`; the same probabilities as `model.predict(rows)`."""
        if len(rows) <= FLAT_ROWS:
            return self._predict_flat(rows, bins)
        # A tree reads whole columns of bins: laid by row (a copy, a fancy index), every
        # read would stride across the row (measured: 3x slower at 200,000 rows).
        bins = np.asfortranarray(bins)
        raw = np.zeros(len(rows)) + self.model.baseline
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            acc = raw[part]
            for tree, table in zip(self.model.trees, self.tables, strict=True):
                if table is None:
                    acc += tree.predict(rows[part])
                    continue
                cell = table.offsets[0].take(bins[part, table.columns[0]]) if table.columns else 0
                for offsets, column in zip(table.offsets[1:], table.columns[1:], strict=True):
                    cell += offsets.take(bins[part, column])
                acc += table.values.take(cell)
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)

    def _predict_flat(self, rows: FloatArray, bins: IntArray) -> FloatArray:
        """`predict` with every tree's cells in one gather over the pairs: a few numpy calls
        per batch instead of a few per tree, which a stream batch's few rows cannot repay.
        The leaves are added in tree order from the baseline (`accumulate` runs in order),
        as `predict` adds them."""
        _, cells = self._steps(bins)
        cells += self.starts[:, None]
        leaves = np.empty((len(self.tables) + 1, len(rows)))
        leaves[0] = self.model.baseline
        self.values.take(cells, out=leaves[1:])
        for t in self.walked:
            leaves[t + 1] = self.model.trees[t].predict(rows)
        raw = np.add.accumulate(leaves, axis=0)[-1]
        return np.asarray(1.0 / (1.0 + np.exp(-raw)), dtype=np.float64)

    def contributions(self, bins: IntArray, moved_to: IntArray) -> FloatArray:
        """Per row and input: the log-odds (the raw score) minus the log-odds with that input
        in bin `moved_to[input]`. Only the trees that read an input change with it, so this
        is one gather, not a model evaluation per input; for models with no walked tree."""
        moved_steps = self.offsets.take(moved_to[self.columns] + self.bases)[:, None]
        out = np.zeros((len(bins), self.inputs))
        for start in range(0, len(bins), CHUNK):
            part = slice(start, start + CHUNK)
            steps, cells = self._steps(bins[part])
            at = cells[self.pair_tree] + self.starts[self.pair_tree][:, None]  # pairs' leaves
            change = self.values.take(at) - self.values.take(at - steps + moved_steps)
            sums = np.add.reduceat(change[self.by_input], self.read_starts, axis=0)
            out[part, self.read] = sums.T
        return out
