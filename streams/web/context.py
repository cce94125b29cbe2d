"""What the API's views share: the app, the table, the active bundle, settings, the feed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust

from rules_store.domain.alerts import ActiveView
from rules_store.domain.holdings import CustomerState
from rules_store.settings import Endpoints, Settings
from rules_store.views.metrics import EngineMetrics
from streams.kafka.topics import TopicNames
from streams.processing.progress import AgentProgress, Stall
from streams.web.live_feed import LiveAlerts
from streams.web.routing import Router


class ActiveSource(Protocol):
    """The bundle in use (streams.worker.ActiveBundle), read at each request."""

    def get(self) -> ActiveView | None: ...


@dataclass
class WebContext:
    app: faust.App
    holdings: faust.types.TableT[str, bytes]
    state_of: Callable[[str], CustomerState | None]  # current, before a commit writes it
    active: ActiveSource
    settings: Settings
    endpoints: Endpoints
    metrics: EngineMetrics
    progress: Mapping[str, AgentProgress]  # by input topic
    stalls: Callable[[], list[tuple[AgentProgress, Stall]]]  # the stall watch's, now
    store_problem: Callable[[], str | None]
    acceptance: Callable[[], dict[str, Any]]  # GET /acceptance: reads Redis (blocking)
    live: LiveAlerts
    router: Router
    names: TopicNames
    bundle_cache: dict[str, bytes] = field(default_factory=dict)  # version -> /bundle body
