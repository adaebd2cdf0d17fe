"""The signatures of the datagrams an amphora sent most recently: an exact replay is refused
before it is decompressed (docs/security.md, Heartbeats).

A genuine amphora never sends the same bytes twice (its ``seq`` grows), so a datagram whose
signature was seen before is a replay (or the network's duplicate). Bounded: ``PER_AMPHORA``
signatures for each amphora id whose signature verified (only real amphorae: the key is
derived from the master key and the id); older replays are refused by their ``seq`` after
decoding, before they are queued.
"""

from __future__ import annotations

from collections import deque

from lbaas.wire.heartbeat import REPLAY, HeartbeatRejected

PER_AMPHORA = 16
MASTER = ""  # upstream's envelope: the amphora is not known before decoding


class RecentSignatures:
    def __init__(self, per_amphora: int = PER_AMPHORA) -> None:
        self.per_amphora = per_amphora
        self._order: dict[str, deque[bytes]] = {}
        self._seen: dict[str, set[bytes]] = {}

    def check(self, amp_id: str | None, mac: bytes) -> None:
        """Remember ``mac``; ``HeartbeatRejected(REPLAY)`` if it was seen recently."""
        key = amp_id or MASTER
        seen = self._seen.setdefault(key, set())
        if mac in seen:
            raise HeartbeatRejected(REPLAY, f"{amp_id or 'master key envelope'}: "
                                            "an identical datagram was received before")
        order = self._order.setdefault(key, deque())
        if len(order) >= self.per_amphora:
            seen.discard(order.popleft())
        order.append(mac)
        seen.add(mac)

    def forget(self, amp_id: str) -> None:
        self._order.pop(amp_id, None)
        self._seen.pop(amp_id, None)
