"""Signing half of the heartbeat envelope (see ``lbaas.wire.heartbeat``), without ``json``.

Two envelopes. Upstream's: ``zlib.compress(json, 9)`` + hex HMAC-SHA256 of the compressed
bytes, keyed by the shared master ``heartbeat_key``. Ours, signed with a key of the amphora's
own::

    b"LBH1" + len(amphora_id) (1 byte) + amphora_id (ASCII) + zlib.compress(json, 9)
        + hex HMAC-SHA256 of everything before it, keyed by amphora_key(master, amphora_id)

The amphora id travels outside the compressed payload, so the health manager derives the key
and verifies the signature before it decompresses or parses anything.

Key choices: the per-amphora key is HMAC-SHA256(master, label + amphora id) — a one-block
HKDF-Expand of a master that is already 32 random bytes — so the health manager needs no key
table (it derives the key from the id in the datagram) and an amphora holding its own key
cannot sign for another id. The amphora's resident supervisor seals heartbeats with this
module alone, so it imports only ``hmac``, ``hashlib`` and ``zlib``.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib

MSG_VER = 3
AMPHORA_MAGIC = b"LBH1"
KEY_LABEL = b"lbaas heartbeat key v1\x00"


def get_hmac(payload: bytes, key: str, hex: bool = True) -> bytes:
    mac = hmac.new(key.encode("utf-8"), payload, hashlib.sha256)
    return mac.hexdigest().encode("ascii") if hex else mac.digest()


def seal(message_json: bytes, key: str) -> bytes:
    """Upstream's envelope: ``zlib.compress(json, 9)`` + hex HMAC-SHA256 of the compressed bytes."""
    payload = zlib.compress(message_json, 9)
    return payload + get_hmac(payload, key)


def amphora_key(master: str, amphora_id: str) -> str:
    """The heartbeat key of one amphora (64 hex characters), derived from the master key."""
    return hmac.new(master.encode("utf-8"), KEY_LABEL + amphora_id.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def seal_for(message_json: bytes, amphora_id: str, key: str) -> bytes:
    """Our envelope: the amphora id in clear, the message compressed, signed with ``key``
    (the amphora's own, ``amphora_key(master, amphora_id)``)."""
    ident = amphora_id.encode("ascii")
    if not 0 < len(ident) < 256:
        raise ValueError("amphora id must be 1 to 255 ASCII characters")
    body = AMPHORA_MAGIC + bytes((len(ident),)) + ident + zlib.compress(message_json, 9)
    return body + get_hmac(body, key)
