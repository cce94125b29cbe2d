"""`report.html` of a corporate training run: the model comparison, the chosen model's
hold-out figures, ROC and PR curves, permutation importance. One self-contained file
(inline SVG, no external scripts), like the retail report."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from rules_store.store.files import atomic_path
from training.corporate import CorporateTraining
from training.model_selection import Scores
from training.report import facts_table, figure_svg, page_start

NAMES = {
    "logistic_regression": "logistic regression",
    "random_forest": "random forest",
    "hist_gradient_boosting": "histogram gradient boosting",
}


def _curves(run: CorporateTraining) -> str:
    selection = run.selection
    figure, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    fpr, tpr = selection.roc
    roc_ax.plot(fpr, tpr, label=f"ROC-AUC {selection.test.roc_auc:.3f}")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="chance")
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title("ROC curve (hold-out)")
    roc_ax.legend(loc="lower right")
    recall, precision = selection.pr
    base = selection.sizes["test_positives"] / max(selection.sizes["test"], 1)
    pr_ax.plot(recall, precision, label=f"PR-AUC {selection.test.pr_auc:.3f}")
    pr_ax.axhline(base, linestyle="--", color="#999", label=f"chance ({base:.2f})")
    pr_ax.scatter(
        [selection.test.recall],
        [selection.test.precision],
        color="#d62728",
        zorder=3,
        label=f"threshold {selection.threshold:.3f}",
    )
    pr_ax.set_xlabel("recall")
    pr_ax.set_ylabel("precision")
    pr_ax.set_title("Precision-recall curve (hold-out)")
    pr_ax.legend(loc="upper right")
    return figure_svg(figure)


def _importance(run: CorporateTraining) -> str:
    items = run.selection.importance[::-1]
    figure, ax = plt.subplots(figsize=(6, 0.35 * len(items) + 1.2))
    ax.barh(
        [name for name, _, _ in items],
        [mean for _, mean, _ in items],
        xerr=[std for _, _, std in items],
        color="#4c78a8",
    )
    ax.set_xlabel("drop in ROC-AUC when the field is shuffled (hold-out)")
    ax.set_title("Permutation importance")
    return figure_svg(figure)


def _comparison_plot(comparison: dict[str, Scores]) -> str:
    names = list(comparison)
    figure, ax = plt.subplots(figsize=(6, 2.8))
    width = 0.38
    xs = range(len(names))
    ax.bar(
        [x - width / 2 for x in xs], [comparison[n].roc_auc for n in names], width, label="ROC-AUC"
    )
    ax.bar(
        [x + width / 2 for x in xs], [comparison[n].pr_auc for n in names], width, label="PR-AUC"
    )
    ax.set_xticks(list(xs), [NAMES.get(n, n) for n in names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("Candidates, out-of-fold")
    ax.legend(loc="lower right")
    return figure_svg(figure)


def _scores_row(name: str, s: Scores, mark: str = "") -> str:
    folds = f" ± {_std(s.roc_auc_folds):.3f}" if s.roc_auc_folds else ""
    cells = [
        f"{html.escape(NAMES.get(name, name))}{mark}",
        f"{s.precision:.3f}",
        f"{s.recall:.3f}",
        f"{s.f1:.3f}",
        f"{s.roc_auc:.3f}{folds}",
        f"{s.pr_auc:.3f}",
        f"{s.threshold:.3f}",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _std(values: tuple[float, ...]) -> float:
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)


HEADER = (
    "<tr><th>model</th><th>precision</th><th>recall</th><th>F1</th><th>ROC-AUC</th>"
    "<th>PR-AUC</th><th>threshold</th></tr>"
)


def _confusion(s: Scores) -> str:
    (tn, fp), (fn, tp) = s.confusion
    return (
        "<table><tr><th></th><th>predicted no</th><th>predicted yes</th></tr>"
        f"<tr><th>actual no</th><td>{tn:,}</td><td>{fp:,}</td></tr>"
        f"<tr><th>actual yes</th><td>{fn:,}</td><td>{tp:,}</td></tr></table>"
    )


def write_corporate_report(path: Path, run: CorporateTraining, seconds: dict[str, float]) -> None:
    metrics: dict[str, Any] = run.metrics
    data = metrics["data"]
    selection = run.selection
    facts: list[tuple[str, object]] = [
        ("label", metrics["label"]),
        ("rows read", f"{data['rows_read']:,}"),
        (
            "rows kept",
            f"{data['rows_kept']:,} ({data['rows_with_missing']:,} with missing values dropped)",
        ),
        ("positives", f"{data['positives']:,} ({data['positive_rate']:.1%})"),
        ("features", ", ".join(metrics["features"])),
        ("never features", ", ".join(data["not_features"])),
        (
            "split",
            f"{selection.sizes['train']:,} training ({metrics['folds']}-fold stratified CV), "
            f"{selection.sizes['test']:,} hold-out",
        ),
        ("model selection", metrics["selection_rule"]),
        ("chosen", NAMES.get(selection.chosen, selection.chosen)),
        ("threshold", f"{selection.threshold:.4f}: {selection.threshold_rule}"),
        ("class imbalance", "classes weighted inversely to their frequency; threshold tuned"),
        ("data fingerprint", run.model.fingerprint),
        ("stage seconds", ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())),
    ]
    if data["rows_without_related_data"]:
        facts.insert(
            2, ("without related data", f"{data['rows_without_related_data']:,} (dropped)")
        )
    parts = [
        page_start(f"xsell {run.model.target} training"),
        f"<h1>Corporate {html.escape(run.model.target)} model</h1>"
        f"<p>created {html.escape(run.model.created_at)}, xsell {html.escape(run.model.code_version)}</p>",
        facts_table(facts),
    ]
    if selection.leaks:
        parts.append(
            "<h2>Leakage warnings</h2><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in selection.leaks)
            + "</ul>"
        )
    parts += [
        "<h2>Chosen model on the hold-out</h2>",
        "<table>" + HEADER + _scores_row(selection.chosen, selection.test) + "</table>",
        _confusion(selection.test),
        _curves(run),
        "<h2>Model comparison (out-of-fold, training part)</h2>",
        "<table>"
        + HEADER
        + "".join(
            _scores_row(name, s, " ✓" if name == selection.chosen else "")
            for name, s in selection.comparison.items()
        )
        + "</table>",
        "<p>Each candidate's threshold is chosen by the same rule on its own out-of-fold "
        "probabilities; ROC-AUC shows ± the standard deviation across folds.</p>",
        _comparison_plot(selection.comparison),
        "<h2>What the model uses</h2>",
        _importance(run),
        "</html>",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
