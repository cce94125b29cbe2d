"""Bundles as local files: for batch commands without Redis, tests, and moving a bundle
between environments (`xsell bundles export`, then `xsell publish`)."""

from __future__ import annotations

import json
from pathlib import Path

from rules_store.bundle.codec import BundleFormatError, bundle_from_dict, bundle_to_json
from rules_store.bundle.model import Bundle
from rules_store.bundle.scoring_codec import ModelFormatError, model_from_dict, model_to_json
from rules_store.domain.scoring import ScoringModel
from rules_store.errors import XsellError
from rules_store.store.files import atomic_path

BUNDLE_FILE = "bundle.json"


class ModelDirError(XsellError, FileNotFoundError):
    """A --model directory does not hold a usable trained model."""


def save_bundle(directory: Path, bundle: Bundle) -> Path:
    """`DIR/bundle.json`, complete or not at all (a bundle a reader would refuse is not written)."""
    return _write(directory / BUNDLE_FILE, bundle_to_json(bundle))


def load_bundle(directory: Path) -> Bundle:
    """A model directory written by `xsell train retail` (its `model/` folder or the run folder)."""
    for candidate in (directory / BUNDLE_FILE, directory / "model" / BUNDLE_FILE):
        if candidate.is_file():
            try:
                raw = json.loads(candidate.read_text(encoding="utf-8"))
            # ValueError: also an integer too long to convert; RecursionError: nested too deep
            except (ValueError, RecursionError) as exc:
                msg = f"{candidate}: not a JSON bundle ({exc})"
                raise BundleFormatError(msg) from exc
            return bundle_from_dict(raw)
    msg = (
        f"{directory}: no trained model ({BUNDLE_FILE} or model/{BUNDLE_FILE}); "
        "run `xsell train retail INPUT --out DIR` and pass that DIR"
    )
    raise ModelDirError(msg)


MODEL_FILE = "model.json"


def save_model(directory: Path, model: ScoringModel) -> Path:
    """`DIR/model.json`: a corporate model in the safe format, for `--model DIR` and publishing."""
    return _write(directory / MODEL_FILE, model_to_json(model))


def load_model(directory: Path, *, target: str) -> ScoringModel:
    """The `target` ("churn" or "potential") model written by `xsell train TARGET ... --out DIR`."""
    path = directory / MODEL_FILE
    if not path.is_file():
        msg = (
            f"{directory}: no trained model ({MODEL_FILE}); run "
            f"`xsell train {target} ... --out DIR` and pass that DIR"
        )
        raise ModelDirError(msg)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError includes UnicodeDecodeError
        msg = f"{path}: not a JSON model ({exc})"
        raise ModelFormatError(msg) from exc
    model = model_from_dict(raw, where=str(path))
    if model.target != target:
        msg = f"{path}: a {model.target} model, but a {target} model is needed here"
        raise ModelFormatError(msg)
    return model


def _write(path: Path, payload: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path
