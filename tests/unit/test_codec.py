"""The bundle codec accepts exactly a bundle: plain JSON values, checked field by field."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from rules_store.codec import BundleFormatError, bundle_from_dict, bundle_to_dict
from rules_store.local_store import load_bundle, save_bundle
from rules_store.schema import RETAIL_SCHEMA
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
