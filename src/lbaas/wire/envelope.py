"""Signing half of the heartbeat envelope (see ``lbaas.wire.heartbeat``), without ``json``.

Key choice: the amphora's resident supervisor seals heartbeats with this module alone, so it
imports only ``hmac``, ``hashlib`` and ``zlib``; decoding and message checks stay in
``lbaas.wire.heartbeat``.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib

MSG_VER = 3


def get_hmac(payload: bytes, key: str, hex: bool = True) -> bytes:
    mac = hmac.new(key.encode("utf-8"), payload, hashlib.sha256)
    return mac.hexdigest().encode("ascii") if hex else mac.digest()


def seal(message_json: bytes, key: str) -> bytes:
    """Upstream's envelope: ``zlib.compress(json, 9)`` + hex HMAC-SHA256 of the compressed bytes."""
    payload = zlib.compress(message_json, 9)
    return payload + get_hmac(payload, key)
