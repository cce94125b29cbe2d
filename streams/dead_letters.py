"""Dead letters: an event that failed validation, with the reason, its raw bytes and where it came from."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime


def dead_letter(
    *, reason: str, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
) -> bytes:
    """The dead-letter record (JSON). `raw` is kept exactly, base64-encoded, so nothing is lost."""
    text: str | None
    try:
        text = raw.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        text = None
    return json.dumps(
        {
            "reason": reason,
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "key": key.decode("utf-8", errors="replace") if key is not None else None,
            "raw_base64": base64.b64encode(raw).decode() if raw is not None else None,
            "raw_text": text,
            "dead_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
        ensure_ascii=False,
    ).encode()
