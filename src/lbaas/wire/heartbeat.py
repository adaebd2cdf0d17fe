"""The amphora heartbeat: Octavia's UDP envelope and its version-3 message, for both sides.

Envelope (octavia/amphorae/backends/health_daemon/status_message.py): ``zlib.compress(json, 9)``
followed by the 64-character hex HMAC-SHA256 of the compressed bytes, keyed by the shared
``heartbeat_key``. Like upstream, the receiver also accepts the older binary 32-byte digest.

Message (upstream ``build_stats_message``, ``ver`` 3, statistics are deltas since the previous
message)::

    {"id": AMP_ID, "seq": N, "ver": 3, "ts": UNIX_TIME, "digest": ACTIVE_BUNDLE_DIGEST,
     "listeners": {LISTENER_ID: {"status": "OPEN", "stats": {"tx", "rx", "conns",
                                                              "totconns", "ereq"}}},
     "pools": {"POOL_ID:LISTENER_ID": {"status": "UP", "members": {MEMBER_ID: "UP"}}}}

``ts`` and ``digest`` are our additions (upstream ignores unknown keys). Key choice: a rejected
datagram raises ``HeartbeatRejected`` with a short machine reason, so the receiver can count
rejections by reason without parsing log text.
"""

from __future__ import annotations

import hmac
import json
import zlib
from typing import Any

from lbaas.wire.envelope import MSG_VER, get_hmac, seal  # noqa: F401  (part of this API)

HEX_HMAC_LEN = 64
BIN_HMAC_LEN = 32
MAX_DATAGRAM = 64 * 1024
MAX_JSON = 4 * 1024 * 1024  # decompression bound: a signed message is never near this
DELTA_STATS = ("tx", "rx", "totconns", "ereq")  # "conns" is a gauge

# reasons a datagram is refused (also the label values of the rejection metric)
TRUNCATED = "truncated"
BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed"
REPLAY = "replay"
UNKNOWN_AMPHORA = "unknown_amphora"
REASONS = (TRUNCATED, BAD_SIGNATURE, MALFORMED, REPLAY, UNKNOWN_AMPHORA)

_HEX = frozenset(b"0123456789abcdef")


class HeartbeatRejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def wrap_envelope(obj: dict[str, Any], key: str) -> bytes:
    return seal(json.dumps(obj, separators=(",", ":")).encode("utf-8"), key)


def unwrap_envelope(envelope: bytes, key: str) -> dict[str, Any]:
    """The verified message; ``HeartbeatRejected`` (truncated, bad_signature, malformed)."""
    if len(envelope) <= HEX_HMAC_LEN:
        raise HeartbeatRejected(TRUNCATED, f"{len(envelope)} bytes")
    tail = envelope[-HEX_HMAC_LEN:]
    payload = envelope[:-HEX_HMAC_LEN]
    if not hmac.compare_digest(tail, get_hmac(payload, key)):
        # upstream's fallback for old amphorae that sent the raw digest
        old_payload = envelope[:-BIN_HMAC_LEN]
        if hmac.compare_digest(envelope[-BIN_HMAC_LEN:], get_hmac(old_payload, key, False)):
            payload = old_payload
        elif not set(tail) <= _HEX:  # the end is lost: what should be the digest is not hex
            raise HeartbeatRejected(TRUNCATED, "no trailing hex HMAC")
        else:  # a whole message signed with another key, or one that lost its last bytes
            try:
                _inflate(payload)
            except HeartbeatRejected as exc:
                why = TRUNCATED if exc.reason == TRUNCATED else BAD_SIGNATURE
                raise HeartbeatRejected(why) from None
            raise HeartbeatRejected(BAD_SIGNATURE)
    try:
        obj = json.loads(_inflate(payload))
    except ValueError as exc:
        raise HeartbeatRejected(MALFORMED, str(exc)) from exc
    return check_message(obj)


def _inflate(payload: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(payload, MAX_JSON)
    except zlib.error as exc:
        raise HeartbeatRejected(MALFORMED, str(exc)) from exc
    if inflater.unconsumed_tail:
        raise HeartbeatRejected(MALFORMED, "message too large")
    if not inflater.eof:
        raise HeartbeatRejected(TRUNCATED, "incomplete zlib stream")
    return text


def check_message(obj: Any) -> dict[str, Any]:
    """Shape check of a decoded message (types only; ids are checked against the database)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise HeartbeatRejected(MALFORMED, "no amphora id")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise HeartbeatRejected(MALFORMED, "no sequence number")
    listeners, pools = obj.get("listeners", {}), obj.get("pools", {})
    if not isinstance(listeners, dict) or not isinstance(pools, dict):
        raise HeartbeatRejected(MALFORMED, "listeners/pools are not objects")
    for value in listeners.values():
        if not isinstance(value, dict) or not isinstance(value.get("stats", {}), dict):
            raise HeartbeatRejected(MALFORMED, "bad listener entry")
    for value in pools.values():
        if not isinstance(value, dict) or not isinstance(value.get("members", {}), dict):
            raise HeartbeatRejected(MALFORMED, "bad pool entry")
    return obj


def pool_id_of(key: str) -> str:
    """Upstream's normalisation: ``"<pool>:<listener>"`` and a bare ``"<pool>"`` both work."""
    return key.rsplit(":", 1)[0] if ":" in key else key


def stat(stats: dict[str, Any], name: str) -> int:
    value = stats.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
