"""Our ranking metrics equal ranx's (a maintained library) on random rankings."""

from __future__ import annotations

import os

import numpy as np
import pytest

# ranx's metrics are numba functions; compiled, they took ~55 s of CI's 15 minutes. Run as
# Python they are the same code, over 300 rankings.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
import ranx

from training.rankers.metrics import ranking_metrics


def test_hr_map_and_ndcg_at_k_equal_ranx() -> None:
    rng = np.random.default_rng(4)
    n, n_items = 300, 8
    truth = rng.integers(0, 1 << n_items, n)
    truth[truth == 0] = 1
    # Rankings of up to 7 distinct items; -1 pads a ranker that offers fewer.
    top = np.array([rng.permutation(n_items)[:7] for _ in range(n)])
    short = rng.random(n) < 0.3
    top[short, 5:] = -1
    qrels = {f"q{u}": {f"d{i}": 1 for i in range(n_items) if truth[u] >> i & 1} for u in range(n)}
    run = {
        f"q{u}": {f"d{item}": float(10 - rank) for rank, item in enumerate(top[u]) if item >= 0}
        for u in range(n)
    }
    theirs = ranx.evaluate(
        ranx.Qrels(qrels), ranx.Run(run), ["hit_rate@1", "hit_rate@3", "ndcg@3", "ndcg@7"]
    )
    ours = ranking_metrics(top, truth)
    assert ours["HR@1"] == pytest.approx(theirs["hit_rate@1"], abs=1e-12)
    assert ours["HR@3"] == pytest.approx(theirs["hit_rate@3"], abs=1e-12)
    assert ours["NDCG@3"] == pytest.approx(theirs["ndcg@3"], abs=1e-12)
    assert ours["NDCG@7"] == pytest.approx(theirs["ndcg@7"], abs=1e-12)
    # ranx divides AP@k by |R|, Santander (and we) by min(|R|, k): equal when |R| <= k.
    few = np.array([int(t).bit_count() <= 3 for t in truth])
    subset = ranx.Qrels({q: r for q, r in qrels.items() if few[int(q[1:])]})
    subrun = ranx.Run({q: r for q, r in run.items() if few[int(q[1:])]})
    assert ranking_metrics(top[few], truth[few])["MAP@3"] == pytest.approx(
        ranx.evaluate(subset, subrun, "map@3"), abs=1e-12
    )
    assert ranking_metrics(top[few], truth[few])["MAP@7"] == pytest.approx(
        ranx.evaluate(subset, subrun, "map@7"), abs=1e-12
    )
