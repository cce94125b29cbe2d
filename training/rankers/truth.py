"""The forward truth: the products each T0 customer opened between T0 and T1, from an
events file (`open` events) or from a later snapshot (held at T1, not at T0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rules_store.errors import XsellError

IntArray = npt.NDArray[np.int64]


class ForwardDataError(XsellError, ValueError):
    """Later data that cannot give a forward truth for this snapshot."""


def openings_from_events(
    path: Path, ids: npt.NDArray[np.object_], items: tuple[str, ...]
) -> tuple[IntArray, dict[str, int]]:
    """Per T0 customer, the mask of products opened in the file; with counts of what was
    left out (lines that are not events, customers not in the snapshot)."""
    row_of = {str(c): i for i, c in enumerate(ids.tolist())}
    bit = {item: 1 << i for i, item in enumerate(items)}
    opened = np.zeros(len(ids), dtype=np.int64)
    counts = {"openings": 0, "not_events": 0, "other_customers": 0}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                event = json.loads(line)
            except ValueError:
                counts["not_events"] += 1
                continue
            if not isinstance(event, dict) or event.get("kind") != "open":
                counts["not_events"] += not isinstance(event, dict)
                continue
            product = event.get("product")
            if product not in bit:
                msg = (
                    f"{path}:{number}: opening of {product!r}, a product outside the catalog "
                    f"{list(items)}; use events of the bank whose snapshot is INPUT"
                )
                raise ForwardDataError(msg)
            row = row_of.get(str(event.get("customer_id")))
            if row is None:
                counts["other_customers"] += 1
                continue
            opened[row] |= bit[str(product)]
            counts["openings"] += 1
    if counts["openings"] == 0:
        others = counts["other_customers"]
        why = (
            f"its {others:,} openings are all of customers not in INPUT"
            if others
            else "it holds no `open` event"
        )
        msg = (
            f"{path}: no product openings of INPUT's customers ({why}); forward evaluation "
            "needs some: generate a longer window (--days) or give --later SNAPSHOT"
        )
        raise ForwardDataError(msg)
    return opened, counts


def openings_from_snapshot(
    ids: npt.NDArray[np.object_],
    held: IntArray,
    later_ids: npt.NDArray[np.object_],
    later_held: IntArray,
    *,
    source: str,
) -> tuple[IntArray, dict[str, int]]:
    """Per T0 customer, the products held in the later snapshot and not at T0. A customer
    missing from the later snapshot opened nothing we can see."""
    position = {str(c): i for i, c in enumerate(later_ids.tolist())}
    at = np.asarray([position.get(str(c), -1) for c in ids.tolist()], dtype=np.int64)
    common = int((at >= 0).sum())
    if common == 0:
        msg = (
            f"{source}: none of its {len(later_ids):,} customer ids is in INPUT (first: "
            f"{str(later_ids[0]) if len(later_ids) else '-'} vs {str(ids[0]) if len(ids) else '-'}); "
            "--later must be a later snapshot of the same customers"
        )
        raise ForwardDataError(msg)
    later = np.where(at >= 0, later_held[np.maximum(at, 0)], held)
    opened = later & ~held
    if not opened.any():
        msg = (
            f"{source}: no customer holds a product they lacked in INPUT; forward evaluation "
            "needs some openings: give a snapshot taken later"
        )
        raise ForwardDataError(msg)
    counts = {
        "common_customers": common,
        "missing_later": len(ids) - common,
        "new_later": len(later_ids) - common,
        "openers": int((opened != 0).sum()),
    }
    return opened, counts
