"""The worker's REST API and dashboard, served by Faust's web server (aiohttp driver).

`register_web` adds, on XSELL_WEB_HOST:XSELL_WEB_PORT:
  GET /                 the dashboard (static files shipped in streams/web/dashboard/)
  GET /health           ok, degraded or failing (503), with the problems (see health.py)
  GET /metrics          Prometheus text: events, alerts, dead letters, lag, latency, bundle
  GET /customers/{id}   a customer's holdings, segment, offers and churn figures, answered
                        by the worker that owns the customer's partition (others forward)
  POST /predict         profile and holdings in, segment, offers and churn figures out
  GET /bundle           the active bundle's metrics and rules (the rules explorer)
  GET /acceptance       acceptance per arm (champion, challenger) and product, from Redis
  POST /outcomes        a customer's answer to an offer, sent to the outcomes topic
  GET /alerts/stream    server-sent events of live alerts (?type=&branch=&segment=)

With XSELL_API_TOKEN set, every path but /, /static/ and /health wants
`Authorization: Bearer <token>` (401 otherwise); EventSource cannot send headers, so
/alerts/stream also takes `?access_token=`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import faust
from aiohttp import web as aioweb

from rules_store.domain.holdings import CustomerState
from rules_store.settings import Endpoints, Settings
from rules_store.views.metrics import EngineMetrics
from streams.compat.web import drop_default_views
from streams.kafka.topics import TopicNames
from streams.processing.progress import AgentProgress, Stall
from streams.web.auth import auth_middleware
from streams.web.context import ActiveSource, WebContext
from streams.web.live_feed import LiveAlerts
from streams.web.routing import Router
from streams.web.views import DASHBOARD_DIR, PAGES


def register_web(
    app: faust.App,
    *,
    holdings: faust.types.TableT[str, bytes],
    state_of: Callable[[str], CustomerState | None],
    active: ActiveSource,
    settings: Settings,
    endpoints: Endpoints,
    metrics: EngineMetrics,
    progress: Mapping[str, AgentProgress],
    stalls: Callable[[], list[tuple[AgentProgress, Stall]]],
    store_problem: Callable[[], str | None],
    acceptance: Callable[[], dict[str, Any]],
) -> LiveAlerts:
    """Add the API, the dashboard and the live alert feed to a worker's Faust app."""
    names = TopicNames(settings.topic_prefix)
    live = LiveAlerts(settings, endpoints, (names.cross_sell_alerts, names.churn_alerts))
    ctx = WebContext(
        app=app,
        holdings=holdings,
        state_of=state_of,
        active=active,
        settings=settings,
        endpoints=endpoints,
        metrics=metrics,
        progress=progress,
        stalls=stalls,
        store_problem=store_problem,
        acceptance=acceptance,
        live=live,
        router=Router(app, holdings, settings.topic_partitions),
        names=names,
    )
    web = app.web
    drop_default_views(web)
    aio: aioweb.Application = web.web_app  # type: ignore[attr-defined]
    aio.middlewares.append(auth_middleware(settings))
    web.add_static("/static/", DASHBOARD_DIR)
    for path, view in PAGES:
        app.page(path)(type(view.__name__, (view,), {"ctx": ctx}))

    async def end_streams(_aio: aioweb.Application) -> None:
        """Close open event streams first, so a stopping worker does not wait for them."""
        live.close_all()
        await ctx.router.close()

    aio.on_shutdown.append(end_streams)

    @app.task
    async def stop_live_feed() -> None:
        try:
            await asyncio.Event().wait()  # until the app cancels its tasks at shutdown
        finally:
            live.stop()

    return live
