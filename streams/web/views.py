"""The API's views. Each reads what it needs from its `WebContext` (`ctx`), given to it
when `streams/web/wiring.py` registers it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

import aiohttp
from aiohttp import web as aioweb
from faust.types import TP
from faust.web import Request, Response, View

from rules_store.domain.events import InvalidEventError
from rules_store.domain.outcomes import outcome_record, parse_outcome
from rules_store.strict_json import dumps_strict
from rules_store.views.customer_view import bundle_json, customer_json
from rules_store.views.metrics import render_prometheus
from rules_store.views.predict import RequestError, parse_predict_request, predict
from streams.web.answers import (
    ApiError,
    encode_answer,
    error_body,
    parse_filter,
    read_json_body,
    sse_event,
    valid_customer_id,
)
from streams.web.context import WebContext
from streams.web.health import assess
from streams.web.routing import ROUTED_HEADER, SERVED_BY_HEADER

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
HEARTBEAT_S = 15.0


class ApiView(View):
    ctx: ClassVar[WebContext]

    def answer(self, value: Any, status: int = 200, **headers: str) -> Response:
        status, body = encode_answer(value, status)
        return self.bytes(
            body,
            content_type="application/json",
            status=status,
            headers={SERVED_BY_HEADER: str(self.ctx.router.here()), **headers},
        )


class Dashboard(ApiView):
    async def get(self, request: Request) -> Response:
        return self.bytes((DASHBOARD_DIR / "index.html").read_bytes(), content_type="text/html")


class Health(ApiView):
    async def get(self, request: Request) -> Response:
        ctx = self.ctx
        current = ctx.active.get()
        report = await assess(ctx)
        return self.answer(
            {
                "status": report.status,
                "problems": [*report.failing, *report.degraded],
                "worker": str(ctx.router.here()),
                "bundle_version": current.version if current else None,
                "partitions": sorted(
                    tp.partition
                    for tp in ctx.app.assignor.assigned_actives()
                    if tp.topic == ctx.router.changelog
                ),
                "stream_subscribers": ctx.live.subscribers,
            },
            report.http_status,
        )


class Metrics(ApiView):
    async def get(self, request: Request) -> Response:
        ctx, names = self.ctx, self.ctx.names
        lag: dict[str, int] = {}
        committed = ctx.app.monitor.tp_committed_offsets
        for tp in ctx.app.consumer.assignment():
            if tp.topic not in (names.transactions, names.profiles, names.holdings_snapshot):
                continue
            try:
                end = ctx.app.consumer.highwater(tp)
            except Exception as exc:  # not fetched yet: lag unknown, not an error
                log.debug("no end offset for %s yet: %s", tp, exc)
                continue
            if end is None:
                continue
            done = committed.get(tp)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - (done if done is not None else 0))
        current = ctx.active.get()
        text = render_prometheus(
            ctx.metrics, bundle_version=current.version if current else None, lag=lag
        )
        return cast(
            Response,
            aioweb.Response(
                body=text.encode(),
                headers={
                    "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                    SERVED_BY_HEADER: str(ctx.router.here()),
                },
            ),
        )


class Customer(ApiView):
    async def get(self, request: Request, customer_id: str) -> Response:
        router = self.ctx.router
        try:
            if not valid_customer_id(customer_id):
                raise ApiError.bad_request(
                    RequestError(
                        "customer_id",
                        "expected 1 to 64 ASCII letters, digits, '_', '.' or '-', not only dots",
                    )
                )
            partition = router.partition_of(customer_id)
            owner = router.owner_of(partition)
            if owner is None:
                raise ApiError(
                    503,
                    error_body(
                        "not_assigned",
                        f"no worker owns partition {partition} right now (the group is "
                        "starting or rebalancing); retry in a few seconds",
                    ),
                    **{"Retry-After": "2"},
                )
            if router.is_here(owner) or ROUTED_HEADER in request.headers:
                return self.answer(self._local(customer_id, partition))
            try:
                status, body, headers = await router.forward(request, owner)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("forwarding customer lookup to %s failed: %s", owner, exc)
                raise ApiError(
                    502,
                    error_body(
                        "owner_unreachable",
                        f"the worker owning partition {partition} ({owner}) did not "
                        f"answer ({type(exc).__name__}); retry, or check that worker",
                    ),
                ) from None
            return self.bytes(body, content_type="application/json", status=status, headers=headers)
        except ApiError as exc:
            return self.answer(exc.body, exc.status, **exc.headers)

    def _local(self, customer_id: str, partition: int) -> dict[str, Any]:
        ctx = self.ctx
        if TP(ctx.router.changelog, partition) not in ctx.app.assignor.assigned_actives():
            raise ApiError(
                503,
                error_body("not_assigned", f"partition {partition} moved; retry"),
                **{"Retry-After": "2"},
            )
        state = ctx.state_of(customer_id)
        if state is None:
            raise ApiError(
                404,
                error_body(
                    "not_found",
                    f"no customer {customer_id!r} in partition {partition}: no snapshot "
                    "row, profile or transaction of theirs has reached the engine",
                ),
            )
        return customer_json(state, ctx.active.get()) | {"partition": partition}


class Predict(ApiView):
    async def post(self, request: Request) -> Response:
        settings = self.ctx.settings
        try:
            body = await read_json_body(request, settings.api_max_body_bytes)
            current = self.ctx.active.get()
            if current is None:
                raise ApiError(
                    503,
                    error_body(
                        "no_bundle",
                        "no active bundle yet: publish and activate one "
                        "(xsell train retail FILE --out DIR --publish --activate)",
                    ),
                )
            try:
                parsed = parse_predict_request(body, current.bundle.schema)
                result = predict(parsed, current, threshold=settings.churn_threshold)
            except RequestError as exc:
                raise ApiError.bad_request(exc) from None
            return self.answer(result)
        except ApiError as exc:
            return self.answer(exc.body, exc.status, **exc.headers)


class Outcomes(ApiView):
    """Record a customer's answer to an offer: sent to the outcomes topic, keyed by the
    customer its alert id names; the worker holding that customer counts it once."""

    async def post(self, request: Request) -> Response:
        ctx = self.ctx
        try:
            body = await read_json_body(request, ctx.settings.api_max_body_bytes)
            if not isinstance(body, dict):
                raise ApiError.bad_request(RequestError("body", "expected a JSON object"))
            body.setdefault("ts", datetime.now(UTC).isoformat(timespec="seconds"))
            try:
                report = parse_outcome(body)
            except InvalidEventError as exc:
                raise ApiError.bad_request(RequestError("outcome", str(exc))) from None
            sent = await ctx.app.send(
                ctx.names.outcomes,
                key=report.customer_id.encode(),
                value=dumps_strict(outcome_record(report)).encode(),
            )
            metadata = await sent
            return self.answer(
                {
                    "alert_id": report.alert_id,
                    "customer_id": report.customer_id,
                    "outcome": report.outcome,
                    "topic": metadata.topic,
                    "partition": metadata.partition,
                    "offset": metadata.offset,
                },
                202,
            )
        except ApiError as exc:
            return self.answer(exc.body, exc.status, **exc.headers)


class Acceptance(ApiView):
    async def get(self, request: Request) -> Response:
        try:
            report = await asyncio.to_thread(self.ctx.acceptance)
        except Exception as exc:  # Redis down: the figures live there
            return self.answer(
                error_body("store_unavailable", f"cannot read the counts: {exc}"), 503
            )
        return self.answer(report)


class BundleView(ApiView):
    async def get(self, request: Request) -> Response:
        current, cache = self.ctx.active.get(), self.ctx.bundle_cache
        if current is None:
            return self.answer(error_body("no_bundle", "no active bundle yet"), 404)
        if current.version not in cache:
            status, encoded = encode_answer(bundle_json(current.version, current.bundle))
            if status != 200:
                return self.bytes(encoded, content_type="application/json", status=status)
            cache.clear()
            cache[current.version] = encoded
        return self.bytes(cache[current.version], content_type="application/json")


class AlertStream(ApiView):
    async def get(self, request: Request) -> Any:
        ctx = self.ctx
        try:
            wanted = parse_filter(request.query)
        except RequestError as exc:
            return self.answer(exc.to_json(), 400)
        response = aioweb.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                "X-Content-Type-Options": "nosniff",
                SERVED_BY_HEADER: str(ctx.router.here()),
            }
        )
        await response.prepare(request)  # type: ignore[arg-type]
        current = ctx.active.get()
        hello = {
            "worker": str(ctx.router.here()),
            "bundle_version": current.version if current else None,
        }
        await response.write(f"retry: 2000\nevent: hello\ndata: {dumps_strict(hello)}\n\n".encode())
        ctx.live.start(asyncio.get_running_loop())
        sub = ctx.live.subscribe(wanted)
        try:
            while True:
                try:
                    alert = await asyncio.wait_for(sub.queue.get(), timeout=HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if alert is None:  # shutting down, or too slow a reader
                    break
                await response.write(sse_event(alert))
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            ctx.live.unsubscribe(sub)
        return response


PAGES: tuple[tuple[str, type[ApiView]], ...] = (
    ("/", Dashboard),
    ("/health", Health),
    ("/metrics", Metrics),
    ("/customers/{customer_id}", Customer),
    ("/predict", Predict),
    ("/outcomes", Outcomes),
    ("/acceptance", Acceptance),
    ("/bundle", BundleView),
    ("/alerts/stream", AlertStream),
)
