"""Retail training, seed 001 section 2: load, encode, segment, mine rules per segment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rules_store.bundle.model import Bundle, SegmentRules
from rules_store.bundle.schema import Schema, UnknownPolicy
from rules_store.domain.rules import Rule
from training.customer_value import value_from_data
from training.encoding import MissingPolicy, RetailData, prepare_retail
from training.loading import FileFormat, file_format, read_snapshot
from training.mining import mine_holdings, prune_redundant
from training.segmentation import SegmentationResult, fit_segments
from training.stages import Stages


@dataclass(frozen=True)
class TrainParams:
    segments: int | None = None  # None = auto
    min_support: float = 0.02
    min_confidence: float = 0.3
    min_lift: float = 1.1
    prune: bool = False
    seed: int = 7
    unknown: UnknownPolicy = "stop"
    missing: MissingPolicy = "drop"
    fit_sample: int = 200_000


@dataclass
class TrainResult:
    bundle: Bundle
    data: RetailData
    segmentation: SegmentationResult
    values: npt.NDArray[np.float64]  # each kept customer's value percentile (0-100)
    seconds: dict[str, float] = field(default_factory=dict)


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def code_version_string() -> str:
    try:
        return version("xsell")
    except PackageNotFoundError:
        return "source"


def popularity(masks: npt.NDArray[np.int64], n_items: int) -> tuple[tuple[int, float], ...]:
    """Items by holding rate, most held first (ties in catalog order)."""
    if len(masks) == 0:
        return ()
    rates = [(i, float(((masks >> i) & 1).mean())) for i in range(n_items)]
    return tuple(sorted(rates, key=lambda ir: (-ir[1], ir[0])))


def load_retail(
    path: Path,
    schema: Schema,
    *,
    encoding: str | None = None,
    unknown: UnknownPolicy = "stop",
    missing: MissingPolicy = "drop",
    stages: Stages | None = None,
) -> RetailData:
    """Parse and encode a snapshot (the first two stages of training and of batch scoring)."""
    stages = stages or Stages()
    fmt: FileFormat = file_format(path)
    with stages.stage("parse"):
        frame = read_snapshot(path, schema, encoding=encoding, fmt=fmt)
    with stages.stage("validate/encode"):
        return prepare_retail(
            frame,
            schema,
            source=str(path),
            first_line=2 if fmt == "csv" else 1,
            unknown=unknown,
            missing=missing,
        )


def mine_segments(
    masks: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    k: int,
    params: TrainParams,
    n_items: int,
) -> tuple[SegmentRules, ...]:
    segments = []
    for s in range(k):
        members = masks[labels == s]
        rules = mine_holdings(
            members,
            n_items,
            min_support=params.min_support,
            min_confidence=params.min_confidence,
            min_lift=params.min_lift,
        )
        pruned: list[Rule] = []
        if params.prune:
            rules, pruned = prune_redundant(rules)
        segments.append(
            SegmentRules(s, len(members), tuple(rules), popularity(members, n_items), tuple(pruned))
        )
    return tuple(segments)


def train_retail(
    path: Path,
    schema: Schema,
    params: TrainParams,
    *,
    encoding: str | None = None,
    stages: Stages | None = None,
) -> TrainResult:
    stages = stages or Stages()
    data = load_retail(
        path,
        schema,
        encoding=encoding,
        unknown=params.unknown,
        missing=params.missing,
        stages=stages,
    )
    with stages.stage("segment"):
        segmentation = fit_segments(
            data.features,
            data.feature_names,
            k=params.segments,
            seed=params.seed,
            fit_sample=params.fit_sample,
        )
    with stages.stage("mine"):
        segments = mine_segments(
            data.masks,
            segmentation.labels,
            segmentation.model.n_segments,
            params,
            len(data.schema.products.names),
        )
    with stages.stage("customer value"):
        value_model, values = value_from_data(data)
    report = data.report
    bundle = Bundle(
        schema=data.schema,
        unknown_policy=params.unknown,
        segment_model=segmentation.model,
        segments=segments,
        params={
            "segments": params.segments or "auto",
            "min_support": params.min_support,
            "min_confidence": params.min_confidence,
            "min_lift": params.min_lift,
            "prune": params.prune,
            "seed": params.seed,
            "missing": params.missing,
            "fit_sample": params.fit_sample,
        },
        metrics={
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "rows_with_missing": report.rows_with_missing,
            "missing_by_column": report.missing_by_column,
            "unknown_values": [
                {"column": u.column, "value": u.value, "count": u.count} for u in report.unknown
            ],
            "segment_sizes": segmentation.sizes,
            "silhouette": {str(k): v for k, v in segmentation.silhouette.items()},
            "rules_per_segment": [len(s.rules) for s in segments],
            "pruned_per_segment": [len(s.pruned) for s in segments],
        },
        fingerprint=file_fingerprint(path),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version_string(),
        value_model=value_model,
    )
    return TrainResult(bundle, data, segmentation, values, stages.seconds)
