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


RuleKey = tuple[frozenset[str], frozenset[str]]


def _keyed(bundle: Bundle, segment: int) -> dict[RuleKey, Rule]:
    """A segment's rules by the product names of their itemsets: two bundles with other
    catalogs (products added, dropped or reordered) compare by name, not by bit."""
    names = bundle.catalog.products_of
    rules = bundle.segments[segment].rules if segment < len(bundle.segments) else ()
    return {(frozenset(names(r.antecedents)), frozenset(names(r.consequents))): r for r in rules}


def diff_bundles(old: Bundle, new: Bundle) -> list[SegmentDiff]:
    """Rules keyed by their itemsets' product names; a segment only one side has is all
    added or removed. `removed` and the old side of `changed` are in the old catalog's bits.

    Segment numbers are compared as they are: after retraining, segment 3 of one bundle
    need not be the same customers as segment 3 of the other.
    """
    diffs = []
    for segment in range(max(len(old.segments), len(new.segments))):
        before, after = _keyed(old, segment), _keyed(new, segment)
        diffs.append(
            SegmentDiff(
                segment,
                added=tuple(after[k] for k in after.keys() - before.keys()),
                removed=tuple(before[k] for k in before.keys() - after.keys()),
                changed=tuple(
                    (before[k], after[k])
                    for k in before.keys() & after.keys()
                    if _figures(before[k]) != _figures(after[k])
                ),
            )
        )
    return diffs


def _figures(rule: Rule) -> tuple[float, ...]:
    """A rule's measures, without its bits (which depend on the catalog)."""
    return (
        rule.antecedent_support,
        rule.consequent_support,
        rule.support,
        rule.confidence,
        rule.lift,
        rule.leverage,
        rule.conviction,
    )
