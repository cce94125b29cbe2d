"""Timed stages of a long run, reported to whoever shows progress (the CLI's progress bars)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stages:
    """`with stages.stage("parse"):` times the block and tells the listeners."""

    def __init__(
        self,
        on_start: Callable[[str], None] = lambda _: None,
        on_end: Callable[[str, float], None] = lambda _, __: None,
    ) -> None:
        self.on_start = on_start
        self.on_end = on_end
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.on_start(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            self.on_end(name, elapsed)
