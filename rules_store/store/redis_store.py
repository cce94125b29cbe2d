"""The one module that talks to Redis: versioned bundles, activation, rollback, watching.

A version is written once (its JSON, its metadata and its place in the version index in
one MULTI/EXEC, so a failure leaves nothing half written) and never changed. Activation
and rollback are Lua scripts: the active pointer, the rollback history and the pub/sub
announcement change together or not at all. Loads check the SHA-256 recorded at publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis

from rules_store.bundle.codec import BundleFormatError, bundle_from_dict, bundle_to_json
from rules_store.bundle.model import Bundle
from rules_store.errors import ServiceUnavailableError, XsellError
from rules_store.settings import Endpoints, Settings
from rules_store.store.keys import StoreKeys

log = logging.getLogger(__name__)

HISTORY_LIMIT = 100


class BundleNotFoundError(XsellError, KeyError):
    """No such version (or no active version) in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BundleIntegrityError(XsellError, ValueError):
    """A stored bundle's bytes do not match the hash recorded when it was published."""


class VersionConflictError(XsellError, ValueError):
    """A version id already exists with other content (versions are immutable)."""


class StoredPointerError(XsellError, ValueError):
    """The active pointer holds something that is not a version id (not written by xsell)."""


def open_redis(settings: Settings, endpoints: Endpoints, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for the configured (or embedded) Redis; credentials come only from settings."""
    options: dict[str, object] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if not endpoints.embedded_redis:
        password = settings.redis_password
        options["username"] = settings.redis_username
        options["password"] = password.get_secret_value() if password else None
        if settings.redis_ssl_cafile and endpoints.redis_url.startswith("rediss://"):
            options["ssl_ca_certs"] = str(settings.redis_ssl_cafile)
    return redis.Redis.from_url(endpoints.redis_url, **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VersionInfo:
    version: str
    sha256: str
    size: int
    created_at: str
    published_at: float
    summary: dict[str, Any]
    active: bool = False
    problem: str = ""  # why its metadata cannot be read; the other fields are then empty


def _version_info(name: bytes, meta: dict[bytes, bytes], active: bool) -> VersionInfo:
    """One version's metadata, or a VersionInfo saying what is wrong with it."""
    try:
        version = name.decode()
    except UnicodeDecodeError:
        version = name.decode(errors="backslashreplace")
        return VersionInfo(version, "", 0, "", 0.0, {}, active, "its id is not UTF-8")
    if not meta:
        return VersionInfo(
            version, "", 0, "", 0.0, {}, active, "no metadata (its meta hash is missing)"
        )
    try:
        summary = json.loads(meta[b"summary"])
        if not isinstance(summary, dict):
            msg = f"summary is a JSON {type(summary).__name__}, not an object"
            raise ValueError(msg)
        return VersionInfo(
            version=version,
            sha256=meta[b"sha256"].decode(),
            size=int(meta[b"size"]),
            created_at=meta[b"created_at"].decode(),
            published_at=float(meta[b"published_at"]),
            summary=summary,
            active=active,
        )
    except KeyError as exc:
        problem = f"metadata lacks {exc.args[0].decode()!r}"
    except (ValueError, RecursionError) as exc:  # ValueError includes UnicodeDecodeError
        problem = f"malformed metadata ({exc})"
    return VersionInfo(version, "", 0, "", 0.0, {}, active, problem)


def encode_bundle(bundle: Bundle) -> tuple[bytes, str, str]:
    """The bundle's canonical bytes, their SHA-256 and the version id derived from both."""
    payload = bundle_to_json(bundle)
    digest = hashlib.sha256(payload).hexdigest()
    stamp = "".join(ch for ch in bundle.created_at if ch.isdigit())[:14] or "0"
    return payload, digest, f"v{stamp}-{digest[:10]}"


def summarize(bundle: Bundle) -> dict[str, Any]:
    return {
        "segments": len(bundle.segments),
        "rules": sum(len(s.rules) for s in bundle.segments),
        "customers": sum(s.customers for s in bundle.segments),
        "items": len(bundle.items),
        "fingerprint": bundle.fingerprint,
        "params": bundle.params,
    }


_ACTIVATE = """
local sha = redis.call('HGET', KEYS[2], 'sha256')
if (not sha) or redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('xsell:unknown version') end
if sha ~= ARGV[2] then return redis.error_reply('xsell:hash changed') end
local previous = redis.call('GET', KEYS[3])
if previous == ARGV[1] then return previous end
redis.call('SET', KEYS[3], ARGV[1])
if previous then
  redis.call('LPUSH', KEYS[4], previous)
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return previous or ''
"""

# KEYS: challenger, active, history; ARGV: history limit, channel. Promotion is one step:
# no moment where the challenger is gone and not yet active.
_PROMOTE = """
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return redis.error_reply('xsell:no challenger') end
local previous = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], version)
redis.call('DEL', KEYS[1])
if previous and previous ~= version then
  redis.call('LPUSH', KEYS[3], previous)
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[1]) - 1)
end
redis.call('PUBLISH', ARGV[2], version)
return {version, previous or ''}
"""

_ROLLBACK = """
local previous = redis.call('LPOP', KEYS[2])
if not previous then return redis.error_reply('xsell:no earlier version') end
redis.call('SET', KEYS[1], previous)
redis.call('PUBLISH', ARGV[1], previous)
return previous
"""

# KEYS: active, versions, history, challenger, then (bundle, meta, acceptance) per doomed
# version in ARGV order.
_DELETE = """
local active = redis.call('GET', KEYS[1])
local challenger = redis.call('HGET', KEYS[4], 'version')
local deleted = {}
for i, version in ipairs(ARGV) do
  if version ~= active and version ~= challenger then
    redis.call('DEL', KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i])
    redis.call('ZREM', KEYS[2], version)
    redis.call('LREM', KEYS[3], 0, version)
    table.insert(deleted, version)
  end
end
return deleted
"""


class Challenge(NamedTuple):
    version: str
    share: float


class BundleStore:
    """Publish, activate, roll back, list, load and delete bundle versions."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = StoreKeys(f"{prefix}:rules")
        self._activate = client.register_script(_ACTIVATE)
        self._rollback = client.register_script(_ROLLBACK)
        self._delete = client.register_script(_DELETE)
        self._promote = client.register_script(_PROMOTE)

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except redis.AuthenticationError as exc:
            msg = f"Redis refused our credentials, cannot {what}: {exc}. Check XSELL_REDIS_USERNAME/PASSWORD."
            raise ServiceUnavailableError(msg) from exc
        except redis.ConnectionError as exc:
            msg = f"Redis is unreachable, cannot {what}: {exc}. Check XSELL_REDIS_URL and retry."
            raise ServiceUnavailableError(msg) from exc
        except redis.TimeoutError as exc:
            msg = f"Redis timed out, cannot {what}: {exc}. Nothing was changed half-way; retry."
            raise ServiceUnavailableError(msg) from exc

    def publish(self, bundle: Bundle) -> str:
        """Store a new immutable version and return its id (idempotent for the same content)."""
        payload, digest, version = encode_bundle(bundle)
        published_at = time.time()
        meta: dict[str, str | int | float] = {
            "sha256": digest,
            "size": len(payload),
            "created_at": bundle.created_at,
            "published_at": published_at,
            "summary": json.dumps(summarize(bundle), ensure_ascii=False),
        }

        def write() -> str:
            existing: bytes | None = self.client.hget(self.keys.meta(version), "sha256")  # type: ignore[assignment]
            if existing is not None:
                if existing.decode() != digest:
                    msg = f"version {version} already exists with different content"
                    raise VersionConflictError(msg)
                return version
            with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.bundle(version), payload, nx=True)
                pipe.hset(self.keys.meta(version), mapping=meta)  # type: ignore[arg-type]
                pipe.zadd(self.keys.versions, {version: int(published_at * 1000)})
                pipe.execute()
            log.info("published bundle version=%s bytes=%s", version, len(payload))
            return version

        result: str = self._call(f"publish bundle {version}", write)
        return result

    def activate(self, version: str) -> str | None:
        """Make `version` active and announce it; returns the previously active version.

        The version is loaded and verified first, and the script re-checks its hash, so a
        corrupt or truncated bundle never becomes active.
        """
        self.load(version)
        digest = self._call(
            f"read {version}", lambda: self.client.hget(self.keys.meta(version), "sha256")
        )

        def run() -> Any:
            return self._activate(
                keys=[
                    self.keys.bundle(version),
                    self.keys.meta(version),
                    self.keys.active,
                    self.keys.history,
                ],
                args=[version, digest, HISTORY_LIMIT, self.keys.channel],
            )

        try:
            previous = self._call(f"activate {version}", run)
        except redis.ResponseError as exc:
            if "xsell:" not in str(exc):
                raise
            msg = f"cannot activate {version}: it was deleted or changed while activating; retry"
            raise BundleNotFoundError(msg) from exc
        log.info("activated bundle version=%s previous=%s", version, previous or None)
        if isinstance(previous, bytes):  # a pointer not written by xsell may not be UTF-8
            previous = previous.decode(errors="backslashreplace")
        return previous or None

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one."""
        try:
            restored = self._call(
                "roll back",
                lambda: self._rollback(
                    keys=[self.keys.active, self.keys.history], args=[self.keys.channel]
                ),
            )
        except redis.ResponseError as exc:
            if "xsell:" not in str(exc):
                raise
            msg = "nothing to roll back to: no version was active before the current one"
            raise BundleNotFoundError(msg) from exc
        version = restored.decode() if isinstance(restored, bytes) else str(restored)
        log.info("rolled back to bundle version=%s", version)
        return version

    def challenge(self, version: str, share: float) -> None:
        """Serve `version` to `share` of the customers (by a hash of their id) beside the
        active bundle; workers take it within a second."""
        if not 0 < share < 1:
            msg = f"--share must be between 0 and 1 (exclusive); got {share}"
            raise ValueError(msg)
        self.load(version)  # verified before any worker can be told about it
        if version == self.active_version():
            msg = f"{version} is the active bundle (the champion): challenge with another version"
            raise VersionConflictError(msg)

        def write() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.challenger, mapping={"version": version, "share": repr(share)})
                pipe.publish(self.keys.channel, f"challenger {version}")
                pipe.execute()

        self._call(f"make {version} the challenger", write)
        log.info("challenger bundle version=%s share=%s", version, share)

    def challenger(self) -> Challenge | None:
        """The challenger and its share of customers, or None."""
        raw = self._call("read the challenger", lambda: self.client.hgetall(self.keys.challenger))
        if not raw:
            return None
        try:
            return Challenge(raw[b"version"].decode(), float(raw[b"share"]))
        except (KeyError, UnicodeDecodeError, ValueError) as exc:
            msg = (
                f"the challenger ({self.keys.challenger}) holds {raw!r}, not a version and share;"
                " set it again with `xsell bundles challenge VERSION --share S` or end it with"
                " `xsell bundles challenge --stop`"
            )
            raise StoredPointerError(msg) from exc

    def end_challenge(self) -> str | None:
        """Stop serving the challenger; returns its version, or None when there was none."""
        current = self.challenger()

        def write() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.challenger)
                pipe.publish(self.keys.channel, "challenger ended")
                pipe.execute()

        self._call("end the challenge", write)
        return None if current is None else current.version

    def promote(self) -> tuple[str, str | None]:
        """Make the challenger the active bundle (the champion); returns (new, previous)."""
        try:
            version, previous = self._call(
                "promote the challenger",
                lambda: self._promote(
                    keys=[self.keys.challenger, self.keys.active, self.keys.history],
                    args=[HISTORY_LIMIT, self.keys.channel],
                ),
            )
        except redis.ResponseError as exc:
            if "xsell:" not in str(exc):
                raise
            msg = "no challenger to promote: start one with `xsell bundles challenge VERSION --share S`"
            raise BundleNotFoundError(msg) from exc
        log.info("promoted challenger version=%s previous=%s", version, previous)
        return version.decode(), previous.decode() or None

    def active_version(self) -> str | None:
        value = self._call("read the active version", lambda: self.client.get(self.keys.active))
        if value is None:
            return None
        try:
            return str(value.decode())
        except UnicodeDecodeError as exc:
            msg = (
                f"the active pointer ({self.keys.active}) holds {value[:40]!r}, not a version id; "
                "activate a good version with `xsell bundles activate V` (see `xsell bundles list`)"
            )
            raise StoredPointerError(msg) from exc

    def resolve(self, version: str) -> str:
        """`active` or a version id, as an existing version id."""
        if version == "active":
            active = self.active_version()
            if active is None:
                msg = "no bundle is active yet: publish one with `xsell publish DIR --activate`"
                raise BundleNotFoundError(msg)
            return active
        return version

    def load(self, version: str = "active") -> tuple[str, Bundle]:
        """Read, verify (SHA-256) and decode a version; nothing in it can execute code."""
        version = self.resolve(version)

        def read() -> tuple[bytes | None, bytes | None]:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self.keys.bundle(version))
                pipe.hget(self.keys.meta(version), "sha256")
                payload, digest = pipe.execute()
            return payload, digest

        payload, digest = self._call(f"load bundle {version}", read)
        if payload is None or digest is None:
            msg = f"no bundle version {version!r} in Redis (see `xsell bundles list`)"
            raise BundleNotFoundError(msg)
        if hashlib.sha256(payload).hexdigest() != digest.decode():
            msg = f"bundle {version}: stored bytes do not match their SHA-256; refusing to load it"
            raise BundleIntegrityError(msg)
        try:
            raw = json.loads(payload)
        # ValueError: also bad UTF-8 and an integer too long to convert; RecursionError: too deep
        except (ValueError, RecursionError) as exc:
            msg = f"bundle {version}: not JSON ({exc})"
            raise BundleFormatError(msg) from exc
        return version, bundle_from_dict(raw)

    def versions(self) -> list[VersionInfo]:
        """Every version, newest first."""

        def read() -> tuple[list[bytes], bytes | None, list[dict[bytes, bytes]]]:
            names: list[bytes] = list(self.client.zrevrange(self.keys.versions, 0, -1))  # type: ignore[arg-type]
            active: bytes | None = self.client.get(self.keys.active)  # type: ignore[assignment]
            with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self.keys.meta(name.decode()))
                metas: list[dict[bytes, bytes]] = pipe.execute()
            return names, active, metas

        names, active, metas = self._call("list versions", read)
        return [
            _version_info(name, meta, active is not None and name == active)
            for name, meta in zip(names, metas, strict=True)
        ]

    def delete_old(self, keep: int) -> list[str]:
        """Delete all but the `keep` newest versions; the active one is never deleted.

        The script re-reads the active pointer, so an activation racing with the delete
        cannot leave it pointing at a deleted version.
        """
        if keep < 1:
            msg = f"--keep must be at least 1; got {keep}"
            raise ValueError(msg)
        return self.delete([v.version for v in self.versions()[keep:]])

    def delete(self, versions: list[str]) -> list[str]:
        """Delete these versions (their bundle, metadata, acceptance counts and index entries)
        but never the active one or the challenger, which the script re-reads; returns those
        deleted."""
        if not versions:
            return []
        keys = [self.keys.active, self.keys.versions, self.keys.history, self.keys.challenger]
        for version in versions:
            keys += [
                self.keys.bundle(version),
                self.keys.meta(version),
                self.keys.acceptance(version),
            ]
        deleted = self._call("delete versions", lambda: self._delete(keys=keys, args=versions))
        names = [d.decode() if isinstance(d, bytes) else str(d) for d in deleted]
        if names:
            log.info("deleted bundle versions=%s", ",".join(names))
        return names


class BundleWatcher:
    """Keeps the active bundle current in a long-running process.

    Reloads within a second of an activation (pub/sub), and also checks the active
    pointer every `poll_s` in case an announcement was missed. When Redis is down, or the
    new version is corrupt, it keeps the bundle it has and tries again later.
    """

    def __init__(
        self,
        store: BundleStore,
        *,
        poll_s: float = 5.0,
        on_change: Callable[[str, Bundle], None] = lambda _v, _b: None,
        on_challenge: Callable[[tuple[Challenge, Bundle] | None], None] = lambda _c: None,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.on_change = on_change
        self.on_challenge = on_challenge
        self.version: str | None = None
        self.bundle: Bundle | None = None
        self.refused: set[str] = set()
        self._challenge: tuple[Challenge, Bundle] | None = None
        # Why Redis could not be read the last time, None when it could: /health says
        # "degraded" while the cached bundle serves.
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> tuple[str | None, Bundle | None]:
        with self._lock:
            return self.version, self.bundle

    def refresh(self) -> bool:
        """Load the active version and the challenger if they changed; True when the active
        bundle was replaced."""
        changed = self._refresh_active()
        self._refresh_challenger()
        return changed

    def challenge(self) -> tuple[Challenge, Bundle] | None:
        """The challenger being served beside the active bundle, with its bundle."""
        with self._lock:
            return self._challenge

    def _refresh_challenger(self) -> None:
        wanted: Challenge | None = None
        try:
            wanted = self.store.challenger()
            current = self._challenge
            if wanted is None or wanted.version in self.refused:
                taken = None
            elif current is not None and current[0].version == wanted.version:
                taken = (wanted, current[1])  # the share may have changed, not the bundle
            else:
                taken = (wanted, self.store.load(wanted.version)[1])
        except (BundleNotFoundError, BundleIntegrityError, BundleFormatError) as exc:
            if wanted is not None:
                self.refused.add(wanted.version)
            log.warning("refused challenger version=%s: %s", wanted and wanted.version, exc)
            taken = None
        except Exception as exc:  # Redis down: keep serving what we have
            self.problem = f"Redis: {exc}"
            return
        # Compared by version and share: bundles hold arrays, and are immutable per version.
        if (taken and taken[0]) != (self._challenge and self._challenge[0]):
            with self._lock:
                self._challenge = taken
            log.info(
                "challenger version=%s share=%s",
                taken[0].version if taken else None,
                taken[0].share if taken else None,
            )
            try:
                self.on_challenge(taken)
            except Exception:
                log.exception("challenger listener failed")

    def _refresh_active(self) -> bool:
        try:
            active = self.store.active_version()
            self.problem = None
            if active is None or active == self.version or active in self.refused:
                return False
            version, bundle = self.store.load(active)
        except (BundleNotFoundError, BundleIntegrityError, BundleFormatError) as exc:
            self.refused.add(str(active))  # versions are immutable: retrying cannot help
            log.warning(
                "refused bundle version=%s, keeping version=%s: %s", active, self.version, exc
            )
            return False
        except Exception as exc:  # Redis down, or anything else: keep serving
            self.problem = f"Redis: {exc}"
            log.warning("keeping bundle version=%s: %s", self.version, exc)
            return False
        with self._lock:
            self.version, self.bundle = version, bundle
        log.info("loaded bundle version=%s", version)
        try:
            self.on_change(version, bundle)
        except Exception:
            log.exception("bundle change listener failed for version=%s", version)
        return True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="bundle-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.store.keys.channel)
                self.refresh()  # whatever changed while we were not subscribed
                next_poll = time.monotonic() + self.poll_s
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None or time.monotonic() >= next_poll:
                        self.refresh()
                        next_poll = time.monotonic() + self.poll_s
            except Exception as exc:  # the watcher must outlive any Redis trouble
                self.problem = f"Redis: {exc}"
                log.warning("bundle watcher lost Redis (%s); retrying in 1s", exc)
                self._stop.wait(1.0)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()
