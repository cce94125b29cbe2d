"""The worker's REST API and dashboard, served by Faust's web server (aiohttp driver).

`register_web` adds, on XSELL_WEB_HOST:XSELL_WEB_PORT:
  GET /                 the dashboard (static files shipped in streams/web/dashboard/)
  GET /health           liveness and what this worker serves
  GET /metrics          Prometheus text: events, alerts, dead letters, lag, latency, bundle
  GET /customers/{id}   a customer's holdings, segment, offers and churn figures, answered
                        by the worker that owns the customer's partition (others forward)
  POST /predict         profile and holdings in, segment, offers and churn figures out
  GET /bundle           the active bundle's metrics and rules (the rules explorer)
  GET /alerts/stream    server-sent events of live alerts (?type=&branch=&segment=)

With XSELL_API_TOKEN set, every path but /, /static/ and /health wants
`Authorization: Bearer <token>` (401 otherwise); EventSource cannot send headers, so
/alerts/stream also takes `?access_token=`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp
import faust
from aiohttp import web as aioweb
from faust.types import TP
from faust.web import Request, Response, View
from kafka.partitioner.default import murmur2
from yarl import URL

from rules_store.domain.state_codec import decode_state
from rules_store.settings import Endpoints, Settings
from rules_store.strict_json import JSONInputError, dumps_strict, loads_strict
from rules_store.views.customer_view import bundle_json, customer_json
from rules_store.views.metrics import ALERT_TYPES, EngineMetrics, render_prometheus
from rules_store.views.predict import RequestError, parse_predict_request, predict
from streams.compat.web import drop_default_views
from streams.kafka.topics import TopicNames
from streams.processing.progress import AgentProgress, waiting_records
from streams.web.health import HealthReport, agent_problem, broker_problem
from streams.web.live_feed import AlertFilter, LiveAlerts

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).with_name("dashboard")
ROUTED_HEADER = "X-Xsell-Routed-From"  # set on a forwarded request: never forwarded again
SERVED_BY_HEADER = "X-Xsell-Worker"
PUBLIC_PATHS = frozenset({"/", "/health"})
# ASCII only (\w would take any script's letters and digits), whole string (`$` would
# let a final newline through), and not only dots ('.' and '..' are path segments).
CUSTOMER_ID = re.compile(r"(?!\.+\Z)[A-Za-z0-9_.-]{1,64}", re.ASCII)
HEARTBEAT_S = 15.0
FORWARD_TIMEOUT_S = 10.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def _json_bytes(value: Any) -> bytes:
    """Strict JSON: ValueError for a NaN or infinite figure (see `encode_answer`)."""
    return dumps_strict(value).encode()


def encode_answer(value: Any, status: int = 200) -> tuple[int, bytes]:
    """An answer's status and strict JSON body; a 500 (logged) rather than invalid JSON.

    Inputs are checked so that no NaN or infinite figure arises; one that does is a bug.

    >>> encode_answer({"drop": float("nan")})
    (500, b'{"error": "internal", "message": "the answer was not valid JSON; see the log"}')
    """
    try:
        return status, _json_bytes(value)
    except ValueError:
        log.exception("an answer was not sent: a figure in it is not valid JSON")
        return 500, _json_bytes(
            error_body("internal", "the answer was not valid JSON; see the log")
        )


def valid_customer_id(customer_id: str) -> bool:
    r"""1 to 64 of A-Z a-z 0-9 _ . - and not only dots (the README's rule).

    >>> [valid_customer_id(c) for c in ("1000000000000042", "a.b-c_d", "..", "c1\n", "١٢٣")]
    [True, True, False, False, False]
    """
    return CUSTOMER_ID.fullmatch(customer_id) is not None


def token_matches(given: str, token: bytes) -> bool:
    r"""The bearer token compared in constant time, whatever bytes the client sent.

    aiohttp decodes header bytes that are not UTF-8 with surrogateescape; encoding them back
    the same way gives the bytes sent (plain `.encode()` raised and made a 500).

    >>> token_matches("tok", b"tok"), token_matches("\udcff", b"tok"), token_matches("é", b"tok")
    (True, False, False)
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token)


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


def _token_of(request: aioweb.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if request.path == "/alerts/stream":  # EventSource cannot send an Authorization header
        return request.query.get("access_token")
    return None


def auth_middleware(settings: Settings) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """401 without the bearer token (when one is configured); security headers on every answer."""
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None

    @aioweb.middleware
    async def guard(
        request: aioweb.Request,
        handler: Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]],
    ) -> aioweb.StreamResponse:
        public = request.path in PUBLIC_PATHS or request.path.startswith("/static/")
        if token is not None and not public:
            given = _token_of(request)
            if given is None or not token_matches(given, token):
                return aioweb.Response(
                    body=_json_bytes(
                        error_body(
                            "unauthorized",
                            "this API wants 'Authorization: Bearer <XSELL_API_TOKEN>'"
                            + (" or ?access_token=" if request.path == "/alerts/stream" else ""),
                        )
                    ),
                    status=401,
                    content_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="xsell"'},
                )
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return guard


def parse_filter(query: Any) -> AlertFilter:
    """?type=cross_sell,churn&branch=b1&segment=2 (repeatable or comma-separated)."""

    def values(name: str) -> set[str]:
        return {v.strip() for raw in query.getall(name, []) for v in raw.split(",") if v.strip()}

    types = values("type")
    unknown = sorted(types - set(ALERT_TYPES))
    if unknown:
        raise RequestError(
            "type", f"unknown alert types {unknown}; expected some of {list(ALERT_TYPES)}"
        )
    branches = values("branch")
    if any(len(b) > 64 for b in branches):
        raise RequestError("branch", "a branch id is at most 64 characters")
    segments = set()
    for raw in values("segment"):
        if not raw.isdigit():
            raise RequestError("segment", f"expected segment numbers, got {raw!r}")
        segments.add(int(raw))
    return AlertFilter(frozenset(types), frozenset(branches), frozenset(segments))


def sse_event(alert: dict[str, Any]) -> bytes:
    """One alert as a server-sent event; its `alert_id` is the event id.

    The live feed publishes only alerts read as strict JSON with a plain-text `alert_id`
    (streams/web/live_feed.py), so neither the data line nor the id line can break.
    """
    return (
        f"id: {alert.get('alert_id', '')}\nevent: alert\ndata: {dumps_strict(alert)}\n\n".encode()
    )


class ApiError(Exception):
    """An answer other than 200, raised from inside a view and turned into JSON there."""

    def __init__(self, status: int, body: dict[str, Any], **headers: str) -> None:
        super().__init__(body.get("message"))
        self.status, self.body, self.headers = status, body, headers

    @classmethod
    def bad_request(cls, exc: RequestError) -> ApiError:
        return cls(400, exc.to_json())


async def read_json_body(request: Request, limit: int) -> Any:
    """The decoded JSON body; 415, 413 or 400 as an ApiError."""
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        raise ApiError(
            415, error_body("unsupported_media_type", "send the body as application/json")
        )
    too_large = ApiError(
        413,
        error_body(
            "too_large", f"the body is larger than {limit} bytes (XSELL_API_MAX_BODY_BYTES)"
        ),
    )
    length = request.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    content = request.content  # type: ignore[attr-defined]  # aiohttp's stream (chunked too)
    raw = b""
    try:
        while len(raw) <= limit and (more := await content.read(limit + 1 - len(raw))):
            raw += more
    except aioweb.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    try:
        return loads_strict(raw)  # no NaN/Infinity, bounded depth: a 400 naming the field
    except JSONInputError as exc:
        raise ApiError.bad_request(RequestError(exc.field, exc.message)) from None


def _same_worker(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


def register_web(
    app: faust.App,
    *,
    holdings: faust.types.TableT[str, bytes],
    active: Any,  # streams.worker.ActiveBundle (not imported: worker imports this module)
    settings: Settings,
    endpoints: Endpoints,
    metrics: EngineMetrics,
    progress: Mapping[str, AgentProgress],
    store_problem: Callable[[], str | None],
) -> LiveAlerts:
    """Add the API, the dashboard and the live alert feed to a worker's Faust app."""
    names = TopicNames(settings.topic_prefix)
    live = LiveAlerts(settings, endpoints, (names.cross_sell_alerts, names.churn_alerts))
    web = app.web
    drop_default_views(web)
    aio: aioweb.Application = web.web_app  # type: ignore[attr-defined]
    aio.middlewares.append(auth_middleware(settings))
    web.add_static("/static/", DASHBOARD_DIR)
    changelog = holdings.changelog_topic.get_topic_name()
    session: aiohttp.ClientSession | None = None
    bundle_cache: dict[str, bytes] = {}

    def here() -> URL:
        return URL(str(app.conf.canonical_url))

    def answer(view: View, value: Any, status: int = 200, **headers: str) -> Response:
        status, body = encode_answer(value, status)
        return view.bytes(
            body,
            content_type="application/json",
            status=status,
            headers={SERVED_BY_HEADER: str(here()), **headers},
        )

    def partition_of(customer: str) -> int:
        # The producers' partitioner (kafka-python and aiokafka both: Java's murmur2), so
        # the partition the customer's events, and so their state, live in.
        return int(murmur2(customer.encode()) & 0x7FFFFFFF) % settings.topic_partitions

    def owner_of(partition: int) -> URL | None:
        for url, topics in app.router.table_metadata(holdings.name).items():
            if partition in topics.get(changelog, ()):
                return URL(url)
        return None

    async def forward(request: Request, owner: URL) -> tuple[int, bytes, dict[str, str]]:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        headers = {ROUTED_HEADER: str(here())}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        url = owner.with_path(request.url.path)
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            served = resp.headers.get(SERVED_BY_HEADER, str(owner))
            return resp.status, body, {SERVED_BY_HEADER: served, ROUTED_HEADER: str(here())}

    @app.page("/")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            return self.bytes((DASHBOARD_DIR / "index.html").read_bytes(), content_type="text/html")

    def agent_problems() -> list[str]:
        committed = app.monitor.tp_committed_offsets
        assigned = app.consumer.assignment()
        now = time.monotonic()
        problems = []
        for agent in progress.values():
            ends = {}
            for tp in assigned:
                if tp.topic != agent.topic:
                    continue
                try:
                    end = app.consumer.highwater(tp)
                except Exception as exc:  # not fetched yet: nothing known
                    log.debug("no end offset for %s yet: %s", tp, exc)
                    continue
                if end is not None:
                    ends[tp.partition] = end
            ours = {tp.partition: o for tp, o in committed.items() if tp.topic == agent.topic}
            waiting = waiting_records(agent, ends, ours)
            problem = agent_problem(agent, waiting, now=now, stall_s=settings.health_stall_s)
            if problem:
                problems.append(problem)
        return problems

    async def assess() -> HealthReport:
        failing, degraded = [], []
        if app.rebalancing or app.in_recovery:
            degraded.append("rebalancing or recovering tables: records wait until it ends")
        else:
            failing += agent_problems()
        broker = await broker_problem(endpoints.kafka_bootstrap)
        if broker:
            failing.append(broker)
        store = store_problem()
        if store:
            degraded.append(f"{store}; serving the cached bundle, if any")
        if active.get() is None:
            degraded.append("no active bundle: alerts wait for `xsell train ... --activate`")
        if not live.alive:
            failing.append("the live alert feed's reader stopped: restart the worker")
        elif live.started and not live.connected:
            degraded.append("the live alert feed is not reading yet")
        return HealthReport(tuple(failing), tuple(degraded))

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            current = active.get()
            report = await assess()
            return answer(
                self,
                {
                    "status": report.status,
                    "problems": [*report.failing, *report.degraded],
                    "worker": str(here()),
                    "bundle_version": current.version if current else None,
                    "partitions": sorted(
                        tp.partition
                        for tp in app.assignor.assigned_actives()
                        if tp.topic == changelog
                    ),
                    "stream_subscribers": live.subscribers,
                },
                report.http_status,
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            lag: dict[str, int] = {}
            committed = app.monitor.tp_committed_offsets
            for tp in app.consumer.assignment():
                if tp.topic not in (names.transactions, names.profiles, names.holdings_snapshot):
                    continue
                try:
                    end = app.consumer.highwater(tp)
                except Exception as exc:  # not fetched yet: lag unknown, not an error
                    log.debug("no end offset for %s yet: %s", tp, exc)
                    continue
                if end is None:
                    continue
                done = committed.get(tp)
                lag[tp.topic] = lag.get(tp.topic, 0) + max(
                    0, end - (done if done is not None else 0)
                )
            current = active.get()
            text = render_prometheus(
                metrics, bundle_version=current.version if current else None, lag=lag
            )
            return cast(
                Response,
                aioweb.Response(
                    body=text.encode(),
                    headers={
                        "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                        SERVED_BY_HEADER: str(here()),
                    },
                ),
            )

    def local_customer(customer_id: str, partition: int) -> dict[str, Any]:
        if TP(changelog, partition) not in app.assignor.assigned_actives():
            raise ApiError(
                503,
                error_body("not_assigned", f"partition {partition} moved; retry"),
                **{"Retry-After": "2"},
            )
        raw = holdings.data.get(customer_id)
        if not raw:
            raise ApiError(
                404,
                error_body(
                    "not_found",
                    f"no customer {customer_id!r} in partition {partition}: no snapshot "
                    "row, profile or transaction of theirs has reached the engine",
                ),
            )
        state = decode_state(raw)
        return customer_json(state, active.get()) | {"partition": partition}

    @app.page("/customers/{customer_id}")
    class Customer(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            try:
                if not valid_customer_id(customer_id):
                    raise ApiError.bad_request(
                        RequestError(
                            "customer_id",
                            "expected 1 to 64 ASCII letters, digits, '_', '.' or '-', "
                            "not only dots",
                        )
                    )
                partition = partition_of(customer_id)
                owner = owner_of(partition)
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
                if _same_worker(owner, here()) or ROUTED_HEADER in request.headers:
                    return answer(self, local_customer(customer_id, partition))
                try:
                    status, body, headers = await forward(request, owner)
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
                return self.bytes(
                    body, content_type="application/json", status=status, headers=headers
                )
            except ApiError as exc:
                return answer(self, exc.body, exc.status, **exc.headers)

    @app.page("/predict")
    class Predict(View):
        async def post(self, request: Request) -> Response:
            try:
                body = await read_json_body(request, settings.api_max_body_bytes)
                current = active.get()
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
                return answer(self, result)
            except ApiError as exc:
                return answer(self, exc.body, exc.status, **exc.headers)

    @app.page("/bundle")
    class BundleView(View):
        async def get(self, request: Request) -> Response:
            current = active.get()
            if current is None:
                return answer(self, error_body("no_bundle", "no active bundle yet"), 404)
            version, bundle, _ = current
            if version not in bundle_cache:
                status, encoded = encode_answer(bundle_json(version, bundle))
                if status != 200:
                    return self.bytes(encoded, content_type="application/json", status=status)
                bundle_cache.clear()
                bundle_cache[version] = encoded
            return self.bytes(bundle_cache[version], content_type="application/json")

    @app.page("/alerts/stream")
    class AlertStream(View):
        async def get(self, request: Request) -> Any:
            try:
                wanted = parse_filter(request.query)
            except RequestError as exc:
                return answer(self, exc.to_json(), 400)
            response = aioweb.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-store",
                    "X-Accel-Buffering": "no",
                    "X-Content-Type-Options": "nosniff",
                    SERVED_BY_HEADER: str(here()),
                }
            )
            await response.prepare(request)  # type: ignore[arg-type]
            current = active.get()
            hello = {"worker": str(here()), "bundle_version": current.version if current else None}
            await response.write(
                f"retry: 2000\nevent: hello\ndata: {dumps_strict(hello)}\n\n".encode()
            )
            live.start(asyncio.get_running_loop())
            sub = live.subscribe(wanted)
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
                live.unsubscribe(sub)
            return response

    async def end_streams(_aio: aioweb.Application) -> None:
        """Close open event streams first, so a stopping worker does not wait for them."""
        live.close_all()
        if session is not None:
            await session.close()

    aio.on_shutdown.append(end_streams)

    @app.task
    async def stop_live_feed() -> None:
        try:
            await asyncio.Event().wait()  # until the app cancels its tasks at shutdown
        finally:
            live.stop()

    return live
