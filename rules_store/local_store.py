"""Bundles as local files: for batch commands without Redis, tests, and moving a bundle
between environments (`xsell bundles export`, then `xsell publish`)."""

from __future__ import annotations

import json
from pathlib import Path

from rules_store.bundle import Bundle
from rules_store.codec import BundleFormatError, bundle_from_dict, bundle_to_dict
from rules_store.errors import XsellError
from rules_store.model_codec import ModelFormatError, model_from_dict, model_to_dict
from rules_store.scoring import ScoringModel

BUNDLE_FILE = "bundle.json"


class ModelDirError(XsellError, FileNotFoundError):
    """A --model directory does not hold a usable trained model."""


def save_bundle(directory: Path, bundle: Bundle) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / BUNDLE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(bundle_to_dict(bundle), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load_bundle(directory: Path) -> Bundle:
    """A model directory written by `xsell train retail` (its `model/` folder or the run folder)."""
    for candidate in (directory / BUNDLE_FILE, directory / "model" / BUNDLE_FILE):
        if candidate.is_file():
            try:
                return bundle_from_dict(json.loads(candidate.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                msg = f"{candidate}: not a JSON bundle ({exc})"
                raise BundleFormatError(msg) from exc
    msg = (
        f"{directory}: no trained model ({BUNDLE_FILE} or model/{BUNDLE_FILE}); "
        "run `xsell train retail INPUT --out DIR` and pass that DIR"
    )
    raise ModelDirError(msg)


MODEL_FILE = "model.json"


def save_model(directory: Path, model: ScoringModel) -> Path:
    """`DIR/model.json`: a corporate model in the safe format, for `--model DIR` and publishing."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model_to_dict(model), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


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
        model = model_from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a JSON model ({exc})"
        raise ModelFormatError(msg) from exc
    if model.target != target:
        msg = f"{path}: a {model.target} model, but a {target} model is needed here"
        raise ModelFormatError(msg)
    return model
