"""The backlog's rules on their own: one slot per amphora, deltas summed (saturating), and the
per-amphora rate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lbaas.health.pending import RATE_MAX, Pending, RateLimit
from lbaas.wire.heartbeat import MAX_COUNTER

NOW = datetime(2026, 1, 1)


def heartbeat(amp: str, seq: int, **stats: int) -> dict[str, Any]:
    return {"id": amp, "seq": seq, "listeners": {"l1": {"status": "OPEN", "stats": stats}}}


def test_newer_heartbeat_replaces_the_pending_one_and_sums_its_deltas() -> None:
    pending = Pending(capacity=2)
    assert pending.put(heartbeat("a", 1, rx=5, tx=1, conns=9), None, NOW) == "added"
    assert pending.put(heartbeat("a", 2, rx=MAX_COUNTER, conns=3), None, NOW) == "merged"
    assert pending.put(heartbeat("b", 1), None, NOW) == "added"
    assert pending.put(heartbeat("c", 1), None, NOW) == "full"  # a third amphora: no slot
    assert len(pending) == 2 and pending.seq("a") == 2
    (first, _, _), (second, _, _) = pending.take(10)
    assert first["seq"] == 2 and second["id"] == "b" and len(pending) == 0
    # rx saturates at BIGINT's maximum; tx carried over; conns is a gauge: the newest wins
    assert first["listeners"]["l1"]["stats"] == {"rx": MAX_COUNTER, "tx": 1, "conns": 3}
    assert not pending.ready.is_set()


def test_more_than_the_rate_from_one_amphora_is_refused_until_the_next_window() -> None:
    rate = RateLimit(window=1.0)
    assert all(rate.allow("a", 10.0) for _ in range(RATE_MAX))
    assert not rate.allow("a", 10.5) and rate.allow("b", 10.5)  # others are not affected
    assert rate.allow("a", 11.0)
