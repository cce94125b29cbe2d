"""The bundle codec accepts exactly a bundle: plain JSON values, checked field by field."""

from __future__ import annotations

import copy
import json
import math
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rules_store.bundle.codec import (
    BundleFormatError,
    bundle_from_dict,
    bundle_to_dict,
    bundle_to_json,
)
from rules_store.bundle.schema import RETAIL_SCHEMA
from rules_store.store.local_store import load_bundle, save_bundle
from training.generate import generate_retail, write_retail
from training.retail import TrainParams, train_retail


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("codec") / "c.del"
    write_retail(generate_retail(2_000, seed=1), path, "del")
    bundle = train_retail(path, RETAIL_SCHEMA, TrainParams(segments=3)).bundle
    doc = bundle_to_dict(bundle)
    assert bundle_from_dict(json.loads(json.dumps(doc))) == bundle
    return doc


def _broken(document: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["format_version"], 99, "format_version 99 is not supported"),
        (["segments", 0, "rules", 0, 5], "0.9", r"rules\[0\].confidence should be int or float"),
        (["segments", 0, "rules", 0, 0], 1 << 20, "outside the 8-item catalog"),
        (["segment_model", "centroids"], [[1.0, 2.0]], "centroids has shape"),
        (["segment_model", "mean", 0], float("nan"), "non-finite"),
        (["segments", 1, "segment"], 0, "segments must be 0..k-1"),
        (["segments"], {"0": []}, "segments should be list"),
        (["schema", "fields", 1, "kind"], "object", "kind 'object'"),
        (["segments", 0, "popularity", 0], 5, r"popularity\[0\] should be list"),
        (["segments", 0, "popularity", 0], [99, 0.5], "outside the catalog"),
        (["segments", 0, "popularity", 0], [1], r"should be \[item, rate\]"),
        (["segment_model", "scale", 0], 0.0, "must be positive"),
        (
            ["segments", 0, "rules", 3, 6],
            float("nan"),
            r"segments\[0\]\.rules\[3\]\.lift: expected a finite number, got nan",
        ),
        (["segments", 1, "rules", 0, 5], float("inf"), r"rules\[0\]\.confidence: .* got inf"),
        (["segments", 0, "rules", 0, 4], -float("inf"), r"rules\[0\]\.support: .* got -inf"),
        (["segments", 0, "rules", 0, 8], float("nan"), r"rules\[0\]\.conviction: .* got nan"),
        pytest.param(
            ["segments", 0, "rules", 0, 6],
            10**400,
            r"rules\[0\]\.lift: expected a finite",
            id="lift-too-large-for-a-float",
        ),
        (["segments", 0, "pruned"], [[1, 2, 0.5, 0.5, 0.3, 0.6, float("nan"), 0.1, 1.0]], "lift"),
        (["segments", 0, "popularity", 0, 1], float("nan"), r"popularity\[0\]\.rate: .* nan"),
        (["segment_model", "centroids", 1, 2], float("inf"), r"centroids\[1\]\[2\]: .* inf"),
        (["segment_model", "scale", 0], float("nan"), r"scale\[0\]: expected a finite number"),
        (["metrics", "silhouette"], {"3": float("nan")}, r"metrics\.silhouette\.3: .* nan"),
        (["params", "min_lift"], float("inf"), r"params\.min_lift: expected a finite number"),
    ],
)
def test_malformed_bundles_are_refused_with_the_path_to_the_problem(
    document: dict[str, Any], path: list[Any], value: Any, expected: str
) -> None:
    with pytest.raises(BundleFormatError, match=expected):
        bundle_from_dict(_broken(document, path, value))


def test_a_pickle_payload_is_refused_without_being_executed(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (tmp_path / "executed",))

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bundle.json").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(BundleFormatError, match="not a JSON bundle"):
        load_bundle(tmp_path)
    assert not (tmp_path / "executed").exists()


def test_a_json_document_that_is_not_a_bundle_is_refused(
    document: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "bundle.json").write_text(
        '{"py/object": "os.system", "args": ["echo hi"]}', encoding="utf-8"
    )
    with pytest.raises(BundleFormatError, match="format_version"):
        load_bundle(tmp_path)
    save_bundle(tmp_path, bundle_from_dict(document))
    assert load_bundle(tmp_path).segments


def test_nan_and_infinity_literals_in_a_bundle_file_are_refused_with_their_path(
    document: dict[str, Any], tmp_path: Path
) -> None:
    doc = _broken(document, ["segments", 0, "rules", 1, 6], float("nan"))
    (tmp_path / "bundle.json").write_text(json.dumps(doc), encoding="utf-8")  # writes NaN
    assert "NaN" in (tmp_path / "bundle.json").read_text(encoding="utf-8")
    with pytest.raises(BundleFormatError, match=r"rules\[1\]\.lift: expected a finite number"):
        load_bundle(tmp_path)


def test_a_bundle_with_a_non_finite_figure_is_never_written(
    document: dict[str, Any], tmp_path: Path
) -> None:
    bundle = bundle_from_dict(document)
    bad = replace(
        bundle,
        segments=(
            replace(
                bundle.segments[0],
                rules=(replace(bundle.segments[0].rules[0], lift=math.nan),),
            ),
            *bundle.segments[1:],
        ),
    )
    with pytest.raises(BundleFormatError, match=r"rules\[0\]\.lift: .* refusing to write"):
        bundle_to_json(bad)
    with pytest.raises(BundleFormatError, match="refusing to write"):
        save_bundle(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BundleFormatError, match=r"metrics\.rows_read: expected a finite number"):
        save_bundle(tmp_path, replace(bundle, metrics={"rows_read": math.inf}))
    assert list(tmp_path.iterdir()) == []
    assert bundle_from_dict(json.loads(bundle_to_json(bundle))) == bundle
