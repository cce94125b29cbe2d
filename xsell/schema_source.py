"""Where a command takes its schema (and so its products) from: a bundle, or a file."""

from __future__ import annotations

from pathlib import Path

import click

from rules_store.bundle.schema import Schema
from rules_store.settings import Settings
from rules_store.store.local_store import load_bundle
from xsell.bundle_commands import open_store
from xsell.options import schema_from


def schema_for(
    settings: Settings, model_dir: Path | None, bundle_ref: str | None, schema_path: Path | None
) -> Schema:
    """The schema of the bundle given (--model DIR or --bundle VERSION), else of --schema."""
    if sum(x is not None for x in (model_dir, bundle_ref, schema_path)) > 1:
        msg = "give one of --model DIR, --bundle VERSION or --schema FILE"
        raise click.UsageError(msg)
    if model_dir is not None:
        return load_bundle(model_dir).schema
    if bundle_ref is not None:
        return open_store(settings).load(bundle_ref)[1].schema
    return schema_from(schema_path)


def schema_args(model_dir: Path | None, bundle_ref: str | None, schema_path: Path | None) -> str:
    """The same choice as command-line arguments, for the next command a hint suggests.

    >>> schema_args(None, "active", None)
    ' --bundle active'
    >>> schema_args(None, None, None)
    ''
    """
    if model_dir is not None:
        return f" --model {model_dir}"
    if bundle_ref is not None:
        return f" --bundle {bundle_ref}"
    return f" --schema {schema_path}" if schema_path is not None else ""
