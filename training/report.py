"""`report.html`: what a training run found, with plots people would rather look at than read.

Plots are inline SVG with text kept as text, so the browser draws the Chinese labels
with its own fonts (matplotlib's bundled font has no CJK glyphs).
"""

from __future__ import annotations

import html
import io
import warnings
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from rules_store.bundle.model import Bundle
from rules_store.domain.rules import format_itemset
from rules_store.store.files import atomic_path

mpl.rcParams["svg.fonttype"] = "none"


def figure_svg(figure: Figure) -> str:
    """The figure as inline SVG (text kept as text), closed afterwards."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _sizes(bundle: Bundle) -> str:
    sizes = [s.customers for s in bundle.segments]
    figure, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar([s.segment for s in bundle.segments], sizes, color="#4c78a8")
    ax.set_xticks([s.segment for s in bundle.segments])
    ax.set_xlabel("segment")
    ax.set_ylabel("customers")
    ax.set_title("Segment sizes")
    return figure_svg(figure)


def _holdings(bundle: Bundle) -> str:
    rates = np.zeros((len(bundle.segments), len(bundle.items)))
    for s in bundle.segments:
        for item, rate in s.popularity:
            rates[s.segment, item] = rate
    figure, ax = plt.subplots(figsize=(8, 0.6 * len(bundle.segments) + 1.5))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(bundle.items)), bundle.items, rotation=30, ha="right")
    ax.set_yticks(range(len(bundle.segments)), [f"segment {s.segment}" for s in bundle.segments])
    for (row, col), value in np.ndenumerate(rates):
        ax.text(
            col,
            row,
            f"{value:.0%}",
            ha="center",
            va="center",
            fontsize=8,
            color="black" if value < 0.6 else "white",
        )
    figure.colorbar(image, ax=ax, label="share holding")
    ax.set_title("Product holding rate by segment")
    return figure_svg(figure)


def _profiles(bundle: Bundle) -> str:
    model = bundle.segment_model
    figure, ax = plt.subplots(figsize=(12, 0.5 * model.n_segments + 2.5))
    limit = float(np.abs(model.centroids).max()) or 1.0
    image = ax.imshow(model.centroids, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(model.features)), model.features, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(model.n_segments), [f"segment {i}" for i in range(model.n_segments)])
    figure.colorbar(image, ax=ax, label="standard deviations from the mean")
    ax.set_title("Segment profiles (centroids of the standardized fields)")
    return figure_svg(figure)


def _rules_scatter(bundle: Bundle) -> str:
    count = len(bundle.segments)
    columns = min(count, 4)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.4 * columns, 3 * rows), squeeze=False, sharex=True, sharey=True
    )
    lifts = [r.lift for s in bundle.segments for r in s.rules] or [1.0]
    norm = mpl.colors.Normalize(vmin=min(lifts), vmax=max(lifts))
    for s, ax in zip(bundle.segments, axes.flat, strict=False):
        ax.scatter(
            [r.support for r in s.rules],
            [r.confidence for r in s.rules],
            c=[r.lift for r in s.rules],
            cmap="viridis",
            norm=norm,
            s=14,
        )
        ax.set_title(f"segment {s.segment}: {len(s.rules)} rules", fontsize=9)
        ax.set_xlabel("support")
        ax.set_ylabel("confidence")
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axes, label="lift")
    return figure_svg(figure)


def _silhouette(scores: dict[str, float]) -> str:
    ks = sorted(int(k) for k in scores)
    figure, ax = plt.subplots(figsize=(5, 2.6))
    ax.plot(ks, [scores[str(k)] for k in ks], marker="o")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax.set_title("Choosing k (higher is better)")
    return figure_svg(figure)


def _top_rules(bundle: Bundle, per_segment: int = 8) -> str:
    rows = []
    for s in bundle.segments:
        for r in s.rules[:per_segment]:
            rows.append(
                f"<tr><td>{s.segment}</td><td>{html.escape(format_itemset(r.antecedents, bundle.items))}</td>"
                f"<td>{html.escape(format_itemset(r.consequents, bundle.items))}</td><td>{r.support:.3f}</td>"
                f"<td>{r.confidence:.3f}</td><td>{r.lift:.3f}</td></tr>"
            )
    return (
        "<table><tr><th>segment</th><th>antecedents</th><th>consequents</th><th>support</th>"
        "<th>confidence</th><th>lift</th></tr>" + "".join(rows) + "</table>"
    )


def page_start(title: str) -> str:
    """The page's head: one self-contained file, no external styles or scripts."""
    return (
        f"<!doctype html><html lang='zh'><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "svg{max-width:100%;height:auto}</style>"
    )


def facts_table(facts: list[tuple[str, object]]) -> str:
    return (
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts
        )
        + "</table>"
    )


def write_report(path: Path, bundle: Bundle, seconds: dict[str, float]) -> None:
    metrics = bundle.metrics
    facts = [
        ("rows read", metrics.get("rows_read")),
        ("rows kept", metrics.get("rows_kept")),
        (
            "rows with missing values",
            f"{metrics.get('rows_with_missing')} ({bundle.params.get('missing')})",
        ),
        ("unknown category values", len(metrics.get("unknown_values", [])) or "none"),
        ("segments", f"{len(bundle.segments)} ({bundle.params.get('segments')})"),
        (
            "thresholds",
            f"support ≥ {bundle.params.get('min_support')}, confidence ≥ {bundle.params.get('min_confidence')}, lift ≥ {bundle.params.get('min_lift')}",
        ),
        ("rules", sum(len(s.rules) for s in bundle.segments)),
        (
            "pruned as redundant",
            sum(len(s.pruned) for s in bundle.segments)
            if bundle.params.get("prune")
            else "pruning off",
        ),
        ("data fingerprint", bundle.fingerprint),
        ("stage seconds", ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())),
    ]
    parts = [
        page_start("xsell retail training"),
        f"<h1>Retail training report</h1><p>created {html.escape(bundle.created_at)}, xsell {html.escape(bundle.code_version)}</p>",
        facts_table(facts),
        _sizes(bundle),
        _holdings(bundle),
        _profiles(bundle),
    ]
    if metrics.get("silhouette"):
        parts.append(_silhouette(metrics["silhouette"]))
    parts += [
        "<h2>Rules</h2>",
        _rules_scatter(bundle),
        "<h2>Strongest rules per segment</h2>",
        _top_rules(bundle),
        "</html>",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
