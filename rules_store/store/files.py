"""Output files appear complete or not at all: the one way every command writes a file.

A writer fills a temporary name in the target's directory; only when it finishes is the
file renamed onto its final name (`os.replace`, atomic on one file system). A full disk,
an error or a Ctrl-C midway leaves the previous file, if any, and no partial one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed onto `path` when the block succeeds.

    The temporary name ends with the final name, so writers that pick a format or a
    compression from the suffix (pandas, pyarrow) behave the same. On any error it is
    removed and the error goes on.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.csv"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("a,b\\n")
    ...     out.exists()
    False
    >>> out.read_text(), [p.name for p in out.parent.iterdir()]
    ('a,b\\n', ['out.csv'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{path.name}")
    try:
        yield tmp
        with tmp.open("rb+") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
