"""Boosting trees as lookup tables (rules_store/domain/boosting_tables.py) give the
walker's probabilities bit for bit, and scikit-learn's within 1e-9, tables or not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from rules_store.domain import boosting_tables
from rules_store.domain.boosting_tables import BoostingTables, Cuts
from rules_store.domain.scoring import BoostingModel
from training.model_export import export_estimator


def _fitted(seed: int) -> tuple[HistGradientBoostingClassifier, BoostingModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Integer codes, flags and a continuous column, as the propensity inputs are.
    rows = np.hstack(
        [
            rng.integers(18, 80, (3_000, 1)),
            rng.integers(0, 5, (3_000, 3)),
            rng.normal(size=(3_000, 2)),
            rng.integers(0, 2, (3_000, 4)),
        ]
    ).astype(float)
    y = rows[:, 0] / 40 + rows[:, 1] - rows[:, 6] + rows[:, 4] + rng.normal(size=3_000) > 2.5
    fitted = HistGradientBoostingClassifier(
        max_iter=30, max_leaf_nodes=15, early_stopping=False, random_state=seed
    ).fit(rows, y.astype(float))
    model = export_estimator(fitted)
    assert isinstance(model, BoostingModel)
    return fitted, model, rows


@pytest.mark.parametrize("seed", [1, 2])
def test_tables_equal_the_walker_exactly_and_scikit_learn_within_1e_9(seed: int) -> None:
    fitted, model, rows = _fitted(seed)
    other = _fitted(seed + 10)[1]  # cuts shared with another model, as in a scorer
    cuts = Cuts.of([model, other], rows.shape[1])
    # Values on and around every threshold: where a comparison could go wrong.
    edges = np.concatenate([t for t in cuts.thresholds if len(t)])
    probe = np.repeat(rows[:200], 3, axis=0)
    probe[:, 0] = np.resize(np.concatenate([edges, np.nextafter(edges, np.inf)]), len(probe))
    # Batches past FLAT_ROWS go a tree at a time; a stream batch's few rows, flat.
    assert len(rows) > boosting_tables.FLAT_ROWS
    for batch in (rows, probe, rows[: boosting_tables.FLAT_ROWS], probe[:7]):
        tables = BoostingTables(model, cuts).predict(batch, cuts.bins(batch))
        assert np.array_equal(tables, model.predict(batch))
        assert np.max(np.abs(tables - fitted.predict_proba(batch)[:, 1])) <= 1e-9


def test_a_tree_too_large_for_a_table_is_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    _, model, rows = _fitted(3)
    cuts = Cuts.of([model], rows.shape[1])
    cells = sorted(len(t.values) for t in BoostingTables(model, cuts).tables if t is not None)
    monkeypatch.setattr(boosting_tables, "MAX_CELLS", cells[len(cells) // 2])
    tables = BoostingTables(model, cuts)
    assert any(t is None for t in tables.tables)
    assert any(t is not None for t in tables.tables)
    for batch in (rows, rows[:50]):  # a tree at a time, and flat
        assert np.array_equal(tables.predict(batch, cuts.bins(batch)), model.predict(batch))


@pytest.mark.parametrize("seed", [1, 2])
def test_contributions_equal_the_model_evaluated_once_more_per_input(seed: int) -> None:
    """An input's contribution (log-odds minus the log-odds with it at its training mean),
    from the trees that read it only, against the whole model evaluated per input."""
    _, model, rows = _fitted(seed)
    cuts = Cuts.of([model], rows.shape[1])
    means, x = rows.mean(axis=0), rows[:300]
    fast = BoostingTables(model, cuts).contributions(cuts.bins(x), cuts.bins(means[None, :])[0])
    n, width = x.shape
    variants = np.repeat(x[:, None, :], width + 1, axis=1)
    variants[:, np.arange(width) + 1, np.arange(width)] = means
    p = model.predict(variants.reshape(-1, width)).reshape(n, width + 1)
    logit = np.log(p / (1 - p))
    assert np.max(np.abs(fast - (logit[:, :1] - logit[:, 1:]))) < 1e-12
    assert np.count_nonzero(fast) > n  # inputs that move the answer: the test can fail
