"""The terminal: results on stdout, progress and errors on stderr; messages never hard-wrap."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
