"""How often the embedded stack restarts a child that died: bounded, with doubling delays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """At most `max_restarts` restarts within `window_s` seconds, each after a doubling delay.

    A child that keeps dying is given up on rather than restarted for ever; one that ran
    for `window_s` since its last restarts is treated as new again, so a long-lived stack
    survives an occasional crash.

    >>> policy = RestartPolicy(max_restarts=3, window_s=60, first_delay_s=0.5, max_delay_s=1.5)
    >>> [policy.delay_s([0.0] * n, now=10.0) for n in range(4)]
    [0.5, 1.0, 1.5, None]
    >>> policy.delay_s([0.0, 0.0, 0.0], now=61.0)  # those restarts have left the window
    0.5
    """

    max_restarts: int = 5
    window_s: float = 600.0
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay_s(self, restarts: Sequence[float], now: float) -> float | None:
        """Seconds to wait before the next restart, or None to give up.

        `restarts` are the (monotonic) times of the earlier restarts, `now` the time of
        the death.
        """
        recent = sum(1 for at in restarts if now - at < self.window_s)
        if recent >= self.max_restarts:
            return None
        return min(self.first_delay_s * 2.0**recent, self.max_delay_s)
