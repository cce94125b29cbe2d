"""Files a training run writes, in the formats the bank already uses (seed 001).

Each file is written under a temporary name and renamed when complete (`atomic_path`).
A run writes its bundle last (`save_bundle`, after the report): a run that failed midway
leaves no `model/bundle.json` for `--model DIR` to take.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from rules_store.bundle.model import Bundle
from rules_store.domain.rules import RULE_FIELDS, Rule, format_itemset
from rules_store.store.files import atomic_path
from rules_store.store.local_store import BUNDLE_FILE, save_bundle

RULE_COLUMNS = ("segment", *RULE_FIELDS)


def rule_rows(
    segment: int | None, rules: Sequence[Rule], items: Sequence[str]
) -> list[list[object]]:
    return [
        [
            *([] if segment is None else [segment]),
            format_itemset(r.antecedents, items),
            format_itemset(r.consequents, items),
            repr(r.antecedent_support),
            repr(r.consequent_support),
            repr(r.support),
            repr(r.confidence),
            repr(r.lift),
            repr(r.leverage),
            repr(r.conviction),
        ]
        for r in rules
    ]


def write_rules_csv(path: Path, bundle: Bundle, *, pruned: bool = False) -> None:
    """Full-precision floats (repr), so the file equals mlxtend's numbers exactly."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RULE_COLUMNS)
        for s in bundle.segments:
            writer.writerows(rule_rows(s.segment, s.pruned if pruned else s.rules, bundle.items))


def seed_format(bundle: Bundle) -> dict[str, dict[str, list[object]]]:
    """Seed 001's rules dict per segment: one entry per antecedent set, its strongest rule.

    `{"['存款', '国债']": [['积存金'], support, consequent support, confidence, lift]}`
    """
    out: dict[str, dict[str, list[object]]] = {}
    for s in bundle.segments:
        entries: dict[str, list[object]] = {}
        for rule in s.rules:  # strongest first, so the first per antecedent wins
            key = str([name for i, name in enumerate(bundle.items) if rule.antecedents >> i & 1])
            if key not in entries:
                consequents = [n for i, n in enumerate(bundle.items) if rule.consequents >> i & 1]
                entries[key] = [
                    consequents,
                    rule.support,
                    rule.consequent_support,
                    rule.confidence,
                    rule.lift,
                ]
        out[str(s.segment)] = entries
    return out


def seed_format_json(rules: dict[str, dict[str, list[object]]]) -> str:
    """JSON with one rule per line, the way people read the seed's output."""
    blocks = []
    for segment, entries in rules.items():
        lines = [
            f"    {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"
            for key, value in entries.items()
        ]
        blocks.append(f"  {json.dumps(segment)}: {{\n" + ",\n".join(lines) + "\n  }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8 CSV with a header, written by pyarrow (pandas' writer is ~7x slower at 1M rows)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp)


def write_assignments(
    path: Path,
    id_column: str,
    ids: npt.NDArray[np.object_],
    labels: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> None:
    write_csv(pd.DataFrame({id_column: ids, "segment": labels, "value": values}), path)


def write_training_outputs(
    out: Path,
    bundle: Bundle,
    ids: npt.NDArray[np.object_],
    labels: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> list[Path]:
    """Assignments and rules; not the bundle, which the caller saves last (`save_run_bundle`).

    A previous run's bundle is removed first: until this run's is saved, `out` holds
    no bundle that does not match its other files.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "model" / BUNDLE_FILE).unlink(missing_ok=True)
    written = [out / "assignments.csv", out / "rules.csv", out / "rules.json"]
    write_assignments(written[0], bundle.schema.id_column, ids, labels, values)
    write_rules_csv(written[1], bundle)
    with atomic_path(written[2]) as tmp:
        tmp.write_text(seed_format_json(seed_format(bundle)), encoding="utf-8")
    if any(s.pruned for s in bundle.segments):
        written.append(out / "rules_pruned.csv")
        write_rules_csv(written[-1], bundle, pruned=True)
    return written


def save_run_bundle(out: Path, bundle: Bundle) -> Path:
    """`out/model/bundle.json`, for `--model out`: a run's last file, after its report."""
    return save_bundle(out / "model", bundle)
