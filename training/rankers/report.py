"""`report.html` of an evaluation: every ranker side by side, per-product precision and
recall at 3, and a gain chart per product. One self-contained file (inline SVG)."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib.pyplot as plt

from rules_store.store.files import atomic_path
from training.rankers.protocols import PRODUCT_K, Evaluation
from training.report import facts_table, figure_svg, page_start


def _metrics_table(evaluation: Evaluation, winner: str) -> str:
    names = list(evaluation.metrics)
    columns = list(next(iter(evaluation.metrics.values())))
    head = "<tr><th>ranker</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    rows = []
    for name in names:
        mark = " (chosen)" if name == winner else ""
        cells = "".join(f"<td>{evaluation.metrics[name][c]:.4f}</td>" for c in columns)
        rows.append(f"<tr><th>{html.escape(name + mark)}</th>{cells}</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _products_table(evaluation: Evaluation) -> str:
    names = list(evaluation.per_product)
    head = (
        "<tr><th>product</th><th>relevant</th>"
        + "".join(
            f"<th>{html.escape(n)} P@{PRODUCT_K}</th><th>{html.escape(n)} R@{PRODUCT_K}</th>"
            for n in names
        )
        + "</tr>"
    )
    rows = []
    for j, item in enumerate(evaluation.items):
        first = evaluation.per_product[names[0]][j]
        cells = "".join(
            f"<td>{evaluation.per_product[n][j]['precision']:.3f}</td>"
            f"<td>{evaluation.per_product[n][j]['recall']:.3f}</td>"
            for n in names
        )
        rows.append(f"<tr><th>{html.escape(item)}</th><td>{first['relevant']:,}</td>{cells}</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _gains(evaluation: Evaluation) -> str:
    items = evaluation.items
    columns = min(len(items), 4)
    rows = (len(items) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.ravel()[len(items) :]:
        ax.axis("off")
    for ax, item in zip(axes.ravel(), items, strict=False):
        for name, curve in evaluation.gains[item].items():
            ax.plot([x for x, _ in curve], [y for _, y in curve], label=name, linewidth=1)
        ax.plot([0, 1], [0, 1], linestyle="--", color="#999", linewidth=0.8)
        ax.set_title(item, fontsize=9)
        ax.set_xlabel("share of customers lacking it, best first", fontsize=7)
        ax.set_ylabel("share of its truth reached", fontsize=7)
    axes.ravel()[0].legend(fontsize=6, loc="lower right")
    figure.subplots_adjust(hspace=0.6, wspace=0.4)  # tight_layout would measure CJK text
    return figure_svg(figure)


def write_evaluation_report(
    path: Path, evaluations: list[Evaluation], winner: str, facts: list[tuple[str, object]]
) -> None:
    parts = [
        page_start("xsell ranker evaluation"),
        "<h1>Ranker evaluation</h1>",
        facts_table(facts),
    ]
    for evaluation in evaluations:
        truth = "hidden product" if evaluation.protocol == "hold-out" else "products opened"
        parts += [
            f"<h2>{html.escape(evaluation.protocol)}</h2>",
            f"<p>{evaluation.customers:,} customers evaluated, {evaluation.with_truth:,} with a "
            f"truth ({truth}); figures are means over those with a truth"
            + (
                ", except 'MAP@7 all' (every customer, 0 without)"
                if evaluation.protocol == "forward"
                else ""
            )
            + ".</p>",
            _metrics_table(evaluation, winner),
            f"<h3>Per product, offered in the top {PRODUCT_K}</h3>",
            _products_table(evaluation),
            "<h3>Gain charts</h3>",
            _gains(evaluation),
        ]
    parts.append("</html>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
