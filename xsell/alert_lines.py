"""One readable line per alert or dead letter, for terminals (`xsell tail`, `xsell demo`)."""

from __future__ import annotations

from typing import Any


def describe(kind: str, record: dict[str, Any]) -> str:
    """A line a branch officer can read.

    >>> describe("cross_sell", {"ts": "2026-11-02T09:30:00+08:00", "branch_id": "b01",
    ...     "customer_id": "c1", "product": "国债", "segment": 2, "alert_id": "ab12cd34ef",
    ...     "evidence": {"antecedents": ["存款"], "confidence": 0.61, "lift": 1.9}})
    '2026-11-02 09:30  b01  c1  cross-sell 国债 (segment 2; holds 存款 → conf 0.61, lift 1.90)  [ab12cd34]'
    """
    when = str(record.get("ts", ""))[:16].replace("T", " ")
    branch = record.get("branch_id") or "-"
    customer = record.get("customer_id", "?")
    short_id = str(record.get("alert_id", ""))[:8]
    kind = str(record.get("type", kind))
    if kind == "cross_sell":
        evidence = record.get("evidence", {})
        if evidence.get("antecedents"):
            why = (
                f"holds {'+'.join(evidence['antecedents'])} → conf {evidence['confidence']:.2f}, "
                f"lift {evidence['lift']:.2f}"
            )
        else:
            why = "most held in the segment"
        what = f"cross-sell {record.get('product')} (segment {record.get('segment')}; {why})"
    elif kind == "churn":
        what = f"churn risk: {record.get('explanation', '')}"
    elif kind == "retention":
        drop = record.get("churn", {}).get("drop", 0.0)
        what = f"retain (not {record.get('instead_of')}): financial assets down {drop:.0%}"
    else:
        source = record.get("source", {})
        where = f"{source.get('topic')}[{source.get('partition')}]@{source.get('offset')}"
        return f"{str(record.get('dead_at', ''))[:19]}  dead letter from {where}: {record.get('reason')}"
    return f"{when}  {branch}  {customer}  {what}  [{short_id}]"
