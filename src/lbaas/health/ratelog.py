"""Log lines about rejected heartbeats, at most one per (source, reason) per interval.

Rejections are counted in the metrics whatever happens here; the log only tells an operator
that something is wrong and where it comes from. Key choice: the table of recent keys is
bounded (an attacker can spoof many source addresses); when it is full, further new keys share
one line per interval, so the log never grows faster than ``(max_keys + 1) / interval``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

OVERFLOW = ("*", "*")


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = 30.0, max_keys: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = logger
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def __call__(self, level: int, source: str, reason: str, text: str) -> bool:
        """Log ``text`` unless a line for (source, reason) was logged within the interval;
        True if a line was written."""
        if not self.log.isEnabledFor(level):
            return False
        now = self.clock()
        key = (source, reason)
        if key not in self._last and len(self._last) >= self.max_keys:
            self._expire(now)
            if len(self._last) >= self.max_keys:
                key = OVERFLOW
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        more = self._suppressed.pop(key, 0)
        tail = f" ({more} more like it in the last {self.interval:.0f} s)" if more else ""
        self._last[key] = now
        if key == OVERFLOW:
            self.log.log(level, "%s [many sources: one line per %.0f s]%s", text,
                         self.interval, tail)
        else:
            self.log.log(level, "%s%s", text, tail)
        return True

    def _expire(self, now: float) -> None:
        for key in [k for k, at in self._last.items() if now - at >= self.interval]:
            if key != OVERFLOW:
                del self._last[key]
                self._suppressed.pop(key, None)
