"""What changed between two bundles, segment by segment (for `xsell bundles diff`)."""

from __future__ import annotations

from dataclasses import dataclass

from rules_store.bundle.model import Bundle
from rules_store.domain.rules import Rule


@dataclass(frozen=True)
class SegmentDiff:
    segment: int
    added: tuple[Rule, ...]
    removed: tuple[Rule, ...]
    changed: tuple[tuple[Rule, Rule], ...]  # (old, new) with the same itemsets

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_bundles(old: Bundle, new: Bundle) -> list[SegmentDiff]:
    """Rules keyed by (antecedents, consequents); a segment only one side has is all added or removed.

    Segment numbers are compared as they are: after retraining, segment 3 of one bundle
    need not be the same customers as segment 3 of the other.
    """
    diffs = []
    for segment in range(max(len(old.segments), len(new.segments))):
        before = {
            (r.antecedents, r.consequents): r
            for r in (old.segments[segment].rules if segment < len(old.segments) else ())
        }
        after = {
            (r.antecedents, r.consequents): r
            for r in (new.segments[segment].rules if segment < len(new.segments) else ())
        }
        diffs.append(
            SegmentDiff(
                segment,
                added=tuple(after[k] for k in after.keys() - before.keys()),
                removed=tuple(before[k] for k in before.keys() - after.keys()),
                changed=tuple(
                    (before[k], after[k])
                    for k in before.keys() & after.keys()
                    if before[k] != after[k]
                ),
            )
        )
    return diffs
