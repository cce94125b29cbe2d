"""A customer's holdings as the stream keeps them, and how one event changes them.

Updates are idempotent: the state remembers, per source partition, the offset of the last
event it applied, and an event at or before that offset is a repeat (a worker restarted
after a crash re-reads events whose effects its table already holds). When core banking
sends the balance after the event, that balance wins over the running sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rules_store.catalog import PRODUCT_BIT, PRODUCTS
from rules_store.events import Transaction


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    balances: Mapping[str, float] = field(default_factory=dict)  # product -> balance
    branch_id: str | None = None
    positions: Mapping[str, int] = field(default_factory=dict)  # "topic:partition" -> offset

    @property
    def held(self) -> int:
        """Held products as a catalog bitmask: a non-zero balance, as in the batch."""
        mask = 0
        for product in PRODUCTS:
            if self.balances.get(product, 0.0) != 0:
                mask |= PRODUCT_BIT[product]
        return mask

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "balances": dict(self.balances),
            "branch_id": self.branch_id,
            "positions": dict(self.positions),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CustomerState:
        return cls(
            customer_id=str(raw["customer_id"]),
            balances={str(k): float(v) for k, v in raw.get("balances", {}).items()},
            branch_id=raw.get("branch_id"),
            positions={str(k): int(v) for k, v in raw.get("positions", {}).items()},
        )


def apply_transaction(
    state: CustomerState, tx: Transaction, *, source: str, offset: int
) -> CustomerState | None:
    """The state after `tx`, or None when this source position was already applied.

    >>> from datetime import datetime, timezone
    >>> tx = Transaction("e1", "c1", datetime.now(timezone.utc), "国债", "credit", 100.0)
    >>> after = apply_transaction(CustomerState("c1"), tx, source="t:0", offset=7)
    >>> after.balances["国债"], apply_transaction(after, tx, source="t:0", offset=7)
    (100.0, None)
    """
    if state.positions.get(source, -1) >= offset:
        return None
    balance = state.balances.get(tx.product, 0.0)
    if tx.kind in ("open", "credit"):  # an opening with no money yet holds nothing
        balance += tx.amount
    elif tx.kind == "close":
        balance = 0.0
    else:  # debit
        balance -= tx.amount
    if tx.balance is not None and tx.kind != "close":
        balance = tx.balance
    balances = dict(state.balances)
    balances[tx.product] = balance
    return replace(
        state,
        balances=balances,
        branch_id=tx.branch_id or state.branch_id,
        positions={**state.positions, source: offset},
    )
