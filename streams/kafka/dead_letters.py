"""Dead letters: a record that could not be applied, with the reason, its bytes and where it came from."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

# A dead letter must always fit the producer's limit (1 MB by default): the echo of the
# record is cut here; its size, digest and source position still identify it exactly.
ECHO_BYTES = 64 * 1024
REASON_CHARS = 1_000
KEY_BYTES = 256


def dead_letter(
    *, reason: str, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
) -> bytes:
    """The dead-letter record (JSON, at most ~200 KB). Up to `ECHO_BYTES` of `raw` are kept
    exactly (base64), with the whole record's size and SHA-256; the record itself stays at
    its topic, partition and offset.

    >>> record = json.loads(dead_letter(reason="bad", raw=b"x" * 100_000, key=None,
    ...                                 topic="t", partition=0, offset=7))
    >>> record["raw_size"], record["truncated"], len(base64.b64decode(record["raw_base64"]))
    (100000, True, 65536)
    """
    echo = raw[:ECHO_BYTES] if raw is not None else None
    text: str | None
    try:
        text = echo.decode("utf-8") if echo is not None else None
    except UnicodeDecodeError:
        text = None
    return json.dumps(
        {
            "reason": reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + "…",
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "key": key[:KEY_BYTES].decode("utf-8", errors="replace") if key is not None else None,
            "raw_base64": base64.b64encode(echo).decode() if echo is not None else None,
            "raw_text": text,
            "raw_size": len(raw) if raw is not None else None,
            "raw_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "truncated": raw is not None and len(raw) > ECHO_BYTES,
            "dead_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
        ensure_ascii=False,
    ).encode()
