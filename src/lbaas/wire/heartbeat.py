"""The amphora heartbeat: Octavia's UDP envelope and its version-3 message, for both sides.

Envelopes (``lbaas.wire.envelope``): ours carries the amphora id in clear and is signed with
that amphora's own key (derived from the master ``heartbeat_key``); upstream's
(octavia/amphorae/backends/health_daemon/status_message.py) is ``zlib.compress(json, 9)``
followed by the 64-character hex HMAC-SHA256 of the compressed bytes, keyed by the master key
itself, accepted only when the settings say so. Like upstream, the upstream envelope may also
end with the older binary 32-byte digest. Nothing is decompressed before a signature verified.

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
from collections.abc import Callable
from typing import Any

from lbaas.wire.envelope import (  # noqa: F401  (part of this API)
    AMPHORA_MAGIC,
    MSG_VER,
    amphora_key,
    get_hmac,
    seal,
    seal_for,
)

HEX_HMAC_LEN = 64
BIN_HMAC_LEN = 32
MAX_DATAGRAM = 64 * 1024
MAX_JSON = 1024 * 1024  # decompression bound (after the signature verified)
MAX_INT = 2**63  # seq and counters go to signed 64-bit columns
MAX_COUNTER = MAX_INT - 1  # sums of deltas saturate here (BIGINT's maximum), never overflow
MAX_GAUGE = 2**31 - 1  # active_connections is a 32-bit column: larger reports are capped
MAX_ID = 64  # ids and statuses are short strings (UUIDs: 36)
MAX_DIGEST = 128  # amphora.active_digest
MAX_ENTRIES = 10_000  # listeners + pools, and members of one pool
DELTA_STATS = ("tx", "rx", "totconns", "ereq")  # "conns" is a gauge

# reasons a datagram is refused (also the label values of the rejection metric)
TRUNCATED = "truncated"
BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed"
REPLAY = "replay"
DUPLICATE = "duplicate"  # already recorded by another health manager (each gets every one)
UNKNOWN_AMPHORA = "unknown_amphora"
WRONG_AMPHORA = "wrong_amphora"  # signed with one amphora's key, speaking for another
MASTER_KEY = "master_key"  # upstream's envelope (master key) while only amphora keys count
RATE_LIMITED = "rate_limited"  # verified, but its amphora sent too many this second
REASONS = (TRUNCATED, BAD_SIGNATURE, MALFORMED, REPLAY, DUPLICATE, UNKNOWN_AMPHORA,
           WRONG_AMPHORA, MASTER_KEY, RATE_LIMITED)
_ID_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-")

_HEX = frozenset(b"0123456789abcdef")
# called with (amphora id, or None for upstream's envelope; the verified signature)
Seen = Callable[[str | None, bytes], None]


class HeartbeatRejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def wrap_envelope(obj: dict[str, Any], key: str) -> bytes:
    """Upstream's envelope, signed with ``key`` (the master key)."""
    return seal(json.dumps(obj, separators=(",", ":")).encode("utf-8"), key)


def wrap_amphora_envelope(obj: dict[str, Any], master: str, amp_id: str | None = None) -> bytes:
    """Our envelope from amphora ``amp_id`` (default ``obj["id"]``), signed with that amphora's
    key derived from ``master``."""
    amp_id = amp_id or str(obj["id"])
    return seal_for(json.dumps(obj, separators=(",", ":")).encode("utf-8"), amp_id,
                    amphora_key(master, amp_id))


def open_envelope(data: bytes, master: str, accept_master_key: bool = False,
                  seen: Seen | None = None) -> dict[str, Any]:
    """The verified message of either envelope; ``HeartbeatRejected`` otherwise.

    Ours: the key is derived from the id in clear, the signature checked, then (only then) the
    payload inflated and parsed, and its ``id`` must be the one the key belongs to. Upstream's
    (signed with the master key itself) only if ``accept_master_key``: amphorae built before
    per-amphora keys hold the master key, and any of them could speak for every other.
    ``seen(amphora id or None, signature)``, called once the signature is verified and before
    anything is inflated, may refuse the datagram (a replay) by raising ``HeartbeatRejected``.
    """
    if not data.startswith(AMPHORA_MAGIC):
        if not accept_master_key:
            raise HeartbeatRejected(MASTER_KEY if len(data) > HEX_HMAC_LEN else TRUNCATED)
        return unwrap_envelope(data, master, seen)
    start = len(AMPHORA_MAGIC) + 1
    size = data[start - 1] if len(data) >= start else 0
    ident = data[start:start + size]
    if not size or len(data) <= start + size + HEX_HMAC_LEN:
        raise HeartbeatRejected(TRUNCATED, f"{len(data)} bytes")
    if size > MAX_ID or not set(ident) <= _ID_CHARS:
        raise HeartbeatRejected(BAD_SIGNATURE, "not an amphora id")
    amp_id = ident.decode("ascii")
    tail, body = data[-HEX_HMAC_LEN:], data[:-HEX_HMAC_LEN]
    if not hmac.compare_digest(tail, get_hmac(body, amphora_key(master, amp_id))):
        raise HeartbeatRejected(BAD_SIGNATURE if set(tail) <= _HEX else TRUNCATED, amp_id)
    if seen is not None:
        seen(amp_id, tail)
    msg = decode_payload(body[start + size:])
    if msg["id"] != amp_id:
        raise HeartbeatRejected(WRONG_AMPHORA, f"{amp_id} signed for {msg['id']}")
    return msg


def unwrap_envelope(envelope: bytes, key: str, seen: Seen | None = None) -> dict[str, Any]:
    """The verified message; ``HeartbeatRejected`` (truncated, bad_signature, malformed).

    The signature is checked over the raw datagram before anything else: an unsigned datagram
    costs one HMAC (two for upstream's old binary digest) and is never decompressed or parsed.
    """
    if len(envelope) <= HEX_HMAC_LEN:
        raise HeartbeatRejected(TRUNCATED, f"{len(envelope)} bytes")
    tail = envelope[-HEX_HMAC_LEN:]
    payload = envelope[:-HEX_HMAC_LEN]
    if not hmac.compare_digest(tail, get_hmac(payload, key)):
        # upstream's fallback for old amphorae that sent the raw digest
        old_payload = envelope[:-BIN_HMAC_LEN]
        if not hmac.compare_digest(envelope[-BIN_HMAC_LEN:], get_hmac(old_payload, key, False)):
            # what should be the digest is not hex: the end is lost (or it never had one)
            raise HeartbeatRejected(BAD_SIGNATURE if set(tail) <= _HEX else TRUNCATED)
        payload = old_payload
    if seen is not None:
        seen(None, envelope[len(payload):])
    return decode_payload(payload)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """A *verified* payload: bounded inflate, JSON, shape check (all failures: malformed)."""
    try:
        obj = json.loads(_inflate(payload))
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise HeartbeatRejected(MALFORMED, type(exc).__name__) from None
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
        raise HeartbeatRejected(MALFORMED, "incomplete zlib stream")
    return text


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INT


def _text(value: Any, limit: int = MAX_ID) -> bool:
    return isinstance(value, str) and len(value) <= limit


def check_message(obj: Any) -> dict[str, Any]:
    """Full type and range check of a decoded message (ids are checked against the database).

    Everything the health manager later reads is checked here, so a signed but malformed
    message is refused as a whole before it can change anything: ``seq`` and counters must fit
    a signed 64-bit column, ids and statuses are short strings, containers have the right type.
    """
    if not isinstance(obj, dict) or not _text(obj.get("id")) or not obj["id"]:
        raise HeartbeatRejected(MALFORMED, "no amphora id")
    if not _count(obj.get("seq")):
        raise HeartbeatRejected(MALFORMED, "no sequence number (0 <= seq < 2**63)")
    if not (obj.get("digest") is None or _text(obj["digest"], MAX_DIGEST)):
        raise HeartbeatRejected(MALFORMED, "bad digest")
    listeners, pools = obj.get("listeners", {}), obj.get("pools", {})
    if not isinstance(listeners, dict) or not isinstance(pools, dict):
        raise HeartbeatRejected(MALFORMED, "listeners/pools are not objects")
    if len(listeners) + len(pools) > MAX_ENTRIES:
        raise HeartbeatRejected(MALFORMED, "too many listeners/pools")
    for listener_id, value in listeners.items():
        if not _text(listener_id) or not isinstance(value, dict) \
                or not _text(value.get("status", "")):
            raise HeartbeatRejected(MALFORMED, "bad listener entry")
        stats = value.get("stats", {})
        if not isinstance(stats, dict) or not all(_count(v) for v in stats.values()):
            raise HeartbeatRejected(MALFORMED, "bad listener statistics")
    for pool_key, value in pools.items():
        if not _text(pool_key, 2 * MAX_ID + 1) or not isinstance(value, dict) \
                or not _text(value.get("status", "")):
            raise HeartbeatRejected(MALFORMED, "bad pool entry")
        members = value.get("members", {})
        if not isinstance(members, dict) or len(members) > MAX_ENTRIES \
                or not all(_text(k) and _text(v) for k, v in members.items()):
            raise HeartbeatRejected(MALFORMED, "bad pool members")
    return obj


def pool_id_of(key: str) -> str:
    """Upstream's normalisation: ``"<pool>:<listener>"`` and a bare ``"<pool>"`` both work."""
    return key.rsplit(":", 1)[0] if ":" in key else key


def stat(stats: dict[str, Any], name: str) -> int:
    value = stats.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
