"""Heartbeats verified but not yet written: the newest one per amphora, and a per-amphora rate.

Key choice: one slot per amphora (a dict keyed by amphora id, in arrival order), not a queue of
messages. A newer heartbeat replaces the pending one and takes over its statistics deltas
(added, saturating at the counters' maximum), so no traffic count is lost, and one amphora —
however fast it sends — holds at most one slot: it can neither fill the backlog nor push other
amphorae's heartbeats out, and the writer's work per round is bounded by the number of
amphorae, not by what they send (docs/security.md, Heartbeats; decision 0111).

One exception to "no count is lost": deltas of a listener that the newer heartbeat no longer
reports are dropped with the older heartbeat (the listener left the amphora's configuration
between two heartbeats of one write round; a new listener in the message would be invented).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from itertools import islice
from typing import Any

from lbaas.wire.heartbeat import DELTA_STATS, MAX_COUNTER, stat

RATE_WINDOW = 1.0  # seconds
RATE_MAX = 50  # verified heartbeats per amphora per window; a genuine one sends a few at most
PRUNE_AT = 65_536  # amphora ids remembered before the quiet ones are dropped

Item = tuple[dict[str, Any], Any, datetime]  # (message, source address, received at)


def saturating_add(a: int, b: int) -> int:
    return min(a + b, MAX_COUNTER)


def merge_deltas(older: dict[str, Any], newer: dict[str, Any]) -> None:
    """Add ``older``'s statistics deltas into ``newer`` (both verified, same amphora)."""
    listeners = newer.get("listeners", {})
    for listener_id, entry in older.get("listeners", {}).items():
        old_stats = entry.get("stats")
        target = listeners.get(listener_id)
        if not isinstance(old_stats, dict) or not isinstance(target, dict):
            continue
        stats = target.setdefault("stats", {})
        if not isinstance(stats, dict):
            continue
        for name in DELTA_STATS:
            moved = stat(old_stats, name)
            if moved:
                stats[name] = saturating_add(stat(stats, name), moved)


class Pending:
    """At most ``capacity`` amphorae, each with its newest unwritten heartbeat."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ready = asyncio.Event()
        self._items: dict[str, Item] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, amphora_id: object) -> bool:
        return amphora_id in self._items

    def seq(self, amphora_id: str) -> int:
        """The pending heartbeat's sequence number (-1: none pending)."""
        item = self._items.get(amphora_id)
        return item[0]["seq"] if item is not None else -1

    def put(self, health: dict[str, Any], addr: Any, received_at: datetime) -> str:
        """``"added"``, ``"merged"`` (replaced the amphora's older one) or ``"full"``."""
        amp_id = health["id"]
        older = self._items.get(amp_id)
        if older is not None:
            merge_deltas(older[0], health)
            self._items[amp_id] = (health, addr, received_at)  # keeps its place in line
            return "merged"
        if len(self._items) >= self.capacity:
            return "full"
        self._items[amp_id] = (health, addr, received_at)
        self.ready.set()
        return "added"

    def take(self, limit: int) -> list[Item]:
        """The ``limit`` oldest-queued amphorae's heartbeats, removed."""
        taken = [self._items.pop(amp_id) for amp_id in list(islice(self._items, limit))]
        if not self._items:
            self.ready.clear()
        return taken


class RateLimit:
    """More than ``limit`` heartbeats of one amphora in ``window`` seconds: the rest refused."""

    def __init__(self, limit: int = RATE_MAX, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._counts: dict[str, tuple[float, int]] = {}  # amphora id: (window start, count)
        self._prune_at = PRUNE_AT

    def allow(self, amphora_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        start, count = self._counts.get(amphora_id, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._counts[amphora_id] = (start, count + 1)
        if len(self._counts) > self._prune_at:  # ids that went quiet (deleted amphorae)
            self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
            self._prune_at = max(PRUNE_AT, 2 * len(self._counts))
        return count < self.limit

    def forget(self, amphora_id: str) -> None:
        self._counts.pop(amphora_id, None)
