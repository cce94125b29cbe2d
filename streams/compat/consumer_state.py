"""What Faust's consumer and the aiokafka consumer under it hold for one partition.

Read for the stall watch's log line when a partition stops moving: Faust's own sets
(assigned, active, paused, buffered), its read and committed offsets, and aiokafka's
fetch state (paused, position, a fetched result waiting to be taken, nodes with a fetch
in flight). These are private attributes of both libraries; aiokafka's are read from
another thread without a lock: good enough for a diagnosis, never used to decide.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP


def committed_offsets(app: faust.App) -> dict[TP, int]:
    """The committed offsets Faust knows: those it sought to after the last rebalance
    (also for partitions never fetched since), then its own commits."""
    known: dict[TP, int | None] = app.consumer._committed_offset  # type: ignore[attr-defined]
    return {tp: offset for tp, offset in known.items() if offset is not None}


def describe_partition(app: faust.App, tp: TP) -> dict[str, Any]:
    consumer: Any = app.consumer
    out: dict[str, Any] = {
        "assigned": tp in consumer.assignment(),
        "active": tp in (consumer._active_partitions or ()),
        "paused": tp in consumer._paused_partitions,
        "buffered": tp in consumer._buffered_partitions,
        "flow_active": consumer.flow_active,
        "read_offset": consumer._read_offset.get(tp),
        "committed": consumer._committed_offset.get(tp),
        "highwater": app.monitor.tp_end_offsets.get(tp) if app.monitor else None,
    }
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if inner is None:
        return out
    try:
        assignment = inner._subscription.subscription.assignment
        state = assignment.state_value(tp) if assignment is not None else None
        fetcher = inner._fetcher
        waiting = fetcher._records.get(tp)
        out |= {
            "fetch_paused": state.paused if state else None,
            "fetch_position": state.position if state and state.has_valid_position else None,
            "fetch_result_waiting": repr(waiting) if waiting is not None else None,
            "fetch_in_flight_nodes": sorted(fetcher._in_flight),
        }
    except Exception as exc:  # another thread changed it under us: say so, go on
        out["fetch_state_error"] = repr(exc)
    return out
