"""Rules-store commands: publish, and `bundles list|show|diff|activate|rollback|delete|export`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from rules_store.bundle.diff import diff_bundles
from rules_store.bundle.model import Bundle
from rules_store.domain.rules import format_itemset
from rules_store.errors import XsellError
from rules_store.settings import Settings
from rules_store.store.local_store import load_bundle, load_model, save_bundle
from rules_store.store.redis_store import BundleStore, open_redis
from xsell.console import out
from xsell.embedded import resolve_endpoints
from xsell.options import activate_option


def open_store(settings: Settings) -> BundleStore:
    """The store on the configured Redis, or on the running embedded stack's."""
    endpoints = resolve_endpoints(settings, need_kafka=False)
    return BundleStore(open_redis(settings, endpoints), settings.redis_key_prefix)


def publish_bundle(settings: Settings, bundle: Bundle, *, activate: bool) -> str:
    store = open_store(settings)
    version = store.publish(bundle)
    out.print(f"published {version}")
    if activate:
        previous = store.activate(version)
        out.print(f"activated {version}" + (f" (was {previous})" if previous else ""))
    return version


@click.command("publish")
@click.argument(
    "directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False, exists=True)
)
@activate_option()
@click.option(
    "--churn-model",
    "churn_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Attach the corporate churn model of this `xsell train churn --out` directory.",
)
@click.option(
    "--potential-model",
    "potential_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Attach the potential-customer model of this `xsell train potential --out` directory.",
)
@click.pass_obj
def publish_cmd(
    settings: Settings,
    directory: Path,
    activate: bool,
    churn_dir: Path | None,
    potential_dir: Path | None,
) -> None:
    """Publish the bundle in DIR (a `xsell train retail` output or an exported bundle) to Redis.

    --churn-model and --potential-model attach corporate models (replacing any the
    bundle carries), so workers get the churn model's probability with the rules.
    Versions are immutable: publishing the same content again is a no-op that returns
    the same version id.
    """
    publish_bundle(
        settings, attach_models(load_bundle(directory), churn_dir, potential_dir), activate=activate
    )


def attach_models(bundle: Bundle, churn_dir: Path | None, potential_dir: Path | None) -> Bundle:
    """The bundle with the corporate models of these training directories attached."""
    if churn_dir is not None:
        bundle = replace(bundle, churn_model=load_model(churn_dir, target="churn"))
        out.print(f"attached the churn model of {churn_dir}")
    if potential_dir is not None:
        bundle = replace(bundle, potential_model=load_model(potential_dir, target="potential"))
        out.print(f"attached the potential model of {potential_dir}")
    return bundle


@click.group()
def bundles() -> None:
    """List, inspect, compare, activate, roll back, export and delete bundle versions; run a
    challenger beside the active bundle and compare them."""


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@bundles.command("list")
@click.pass_obj
def list_cmd(settings: Settings) -> None:
    """Every published version, newest first, with its figures; * marks the active one."""
    table = Table(title="bundles", title_justify="left")
    for column in (
        "",
        "version",
        "published (UTC)",
        "segments",
        "rules",
        "customers",
        "size",
        "data",
    ):
        table.add_column(
            column,
            justify="right" if column in ("segments", "rules", "customers", "size") else "left",
            no_wrap=column in ("version", "published (UTC)"),  # ids must stay copyable
        )
    broken = []
    for info in open_store(settings).versions():
        if info.problem:
            broken.append(info)
            continue
        summary = info.summary
        table.add_row(
            "*" if info.active else "",
            info.version,
            _when(info.published_at),
            str(summary.get("segments")),
            str(summary.get("rules")),
            f"{summary.get('customers', 0):,}",
            f"{info.size / 1024:.1f} KiB",
            str(summary.get("fingerprint", ""))[:19],
        )
    out.print(table)
    for info in broken:  # one line each, after the versions that can be used
        out.print(
            f"[yellow]{info.version}{' (active)' if info.active else ''}: {info.problem}; "
            f"it cannot be listed or loaded, delete it with `xsell bundles delete {info.version}`[/]",
            highlight=False,
            soft_wrap=True,
        )


@bundles.command("show")
@click.argument("version", default="active")
@click.option(
    "--rules",
    "top",
    type=int,
    default=5,
    show_default=True,
    help="Strongest rules to show per segment.",
)
@click.pass_obj
def show_cmd(settings: Settings, version: str, top: int) -> None:
    """One version (default: the active one): parameters, segments, strongest rules."""
    version, bundle = open_store(settings).load(version)
    out.print(
        f"[bold]{version}[/] created {bundle.created_at} by xsell {bundle.code_version}; data {bundle.fingerprint}"
    )
    out.print(f"parameters: {bundle.params}")
    for model in (bundle.churn_model, bundle.potential_model):
        if model is not None:
            holdout = model.metrics.get("holdout", {})
            out.print(
                f"{model.target} model: {model.kind}, threshold {model.threshold:.4f}, "
                f"hold-out ROC-AUC {holdout.get('roc_auc', float('nan')):.3f}, "
                f"features {', '.join(model.feature_names)}",
                highlight=False,
            )
    metrics = bundle.metrics

    def count(name: str) -> str:
        value = metrics.get(name)
        return f"{value:,}" if isinstance(value, int) else "?"

    out.print(
        f"training data: {count('rows_read')} rows read, {count('rows_kept')} kept, "
        f"{count('rows_with_missing')} with missing values, "
        f"{len(metrics.get('unknown_values', []))} unknown category value(s)"
    )
    if metrics.get("silhouette"):
        scores = ", ".join(f"k={k}: {v:.3f}" for k, v in metrics["silhouette"].items())
        out.print(f"silhouette by k: {scores}")
    table = Table(title="segments", title_justify="left")
    for column in ("segment", "customers", "rules", "rule", "support", "confidence", "lift"):
        table.add_column(column)
    for s in bundle.segments:
        shown = s.rules[:top] or (None,)
        for i, rule in enumerate(shown):
            table.add_row(
                str(s.segment) if i == 0 else "",
                f"{s.customers:,}" if i == 0 else "",
                str(len(s.rules)) if i == 0 else "",
                f"{format_itemset(rule.antecedents, bundle.items)} → {format_itemset(rule.consequents, bundle.items)}"
                if rule
                else "-",
                f"{rule.support:.3f}" if rule else "",
                f"{rule.confidence:.3f}" if rule else "",
                f"{rule.lift:.3f}" if rule else "",
            )
    out.print(table)


@bundles.command("diff")
@click.argument("old")
@click.argument("new", default="active")
@click.pass_obj
def diff_cmd(settings: Settings, old: str, new: str) -> None:
    """Rules added, removed and changed, by segment, from OLD to NEW (default: active)."""
    store = open_store(settings)
    old_version, old_bundle = store.load(old)
    new_version, new_bundle = store.load(new)
    table = Table(title=f"{old_version} → {new_version}", title_justify="left")
    for column in ("segment", "change", "rule", "confidence", "lift"):
        table.add_column(column)
    items = new_bundle.items
    total = 0
    for d in diff_bundles(old_bundle, new_bundle):
        for rule in d.added:
            table.add_row(
                str(d.segment),
                "[green]added[/]",
                f"{format_itemset(rule.antecedents, items)} → {format_itemset(rule.consequents, items)}",
                f"{rule.confidence:.3f}",
                f"{rule.lift:.3f}",
            )
        for rule in d.removed:
            table.add_row(
                str(d.segment),
                "[red]removed[/]",
                f"{format_itemset(rule.antecedents, old_bundle.items)} → {format_itemset(rule.consequents, old_bundle.items)}",
                f"{rule.confidence:.3f}",
                f"{rule.lift:.3f}",
            )
        for before, after in d.changed:
            table.add_row(
                str(d.segment),
                "[yellow]changed[/]",
                f"{format_itemset(after.antecedents, items)} → {format_itemset(after.consequents, items)}",
                f"{before.confidence:.3f} → {after.confidence:.3f}",
                f"{before.lift:.3f} → {after.lift:.3f}",
            )
        total += len(d.added) + len(d.removed) + len(d.changed)
    out.print(table if total else f"{old_version} and {new_version} have the same rules")


@bundles.command("activate")
@click.argument("version")
@click.pass_obj
def activate_cmd(settings: Settings, version: str) -> None:
    """Make VERSION the active bundle; running workers reload it within a second."""
    previous = open_store(settings).activate(version)
    out.print(f"activated {version}" + (f" (was {previous})" if previous else ""))


@bundles.command("rollback")
@click.pass_obj
def rollback_cmd(settings: Settings) -> None:
    """Re-activate the version that was active before the current one."""
    out.print(f"rolled back to {open_store(settings).rollback()}")


@bundles.command("delete")
@click.argument("versions", metavar="[VERSION]...", nargs=-1)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    help="How many of the newest versions to keep.",
)
@click.pass_obj
def delete_cmd(settings: Settings, versions: tuple[str, ...], keep: int | None) -> None:
    """Delete these VERSIONs, or all but the newest --keep; the active version is always kept."""
    if (keep is None) == (not versions):
        msg = "give either VERSIONs to delete or --keep N, not both"
        raise click.UsageError(msg)
    store = open_store(settings)
    deleted = store.delete_old(keep) if keep is not None else store.delete(list(versions))
    out.print(f"deleted {len(deleted)} version(s)" + (f": {', '.join(deleted)}" if deleted else ""))
    kept = [v for v in versions if v not in deleted]
    if kept:
        msg = f"not deleted: {', '.join(kept)} (the active version is never deleted; activate another first)"
        raise XsellError(msg)


@bundles.command("export")
@click.argument("version")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
def export_cmd(settings: Settings, version: str, directory: Path) -> None:
    """Write VERSION (or `active`) to DIR/bundle.json, to move it or use it with --model."""
    version, bundle = open_store(settings).load(version)
    out.print(f"exported {version} to {save_bundle(directory, bundle)}")


COMMANDS = (publish_cmd, bundles)
