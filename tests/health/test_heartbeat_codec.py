"""The heartbeat envelope matches upstream's byte for byte; the agent's message shape."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import zlib
from typing import Any

import pytest

from lbaas.agent.heartbeat import HeartbeatSender, StatsDeltas, build_message, pool_owners
from lbaas.wire.heartbeat import (
    HeartbeatRejected,
    amphora_key,
    open_envelope,
    seal_for,
    unwrap_envelope,
    wrap_amphora_envelope,
    wrap_envelope,
)

KEY = "insecure"
MSG = {"id": "amp", "seq": 7, "ver": 3, "listeners": {}, "pools": {}}


def upstream_wrap(obj: dict, key: str, hex: bool = True) -> bytes:
    """octavia.amphorae.backends.health_daemon.status_message.wrap_envelope, inlined."""
    payload = zlib.compress(json.dumps(obj).encode("utf-8"), 9)
    mac = hmac.new(key.encode("utf-8"), payload, hashlib.sha256)
    return payload + (mac.hexdigest().encode("utf-8") if hex else mac.digest())


def test_upstream_envelopes_are_accepted_hex_and_legacy_binary() -> None:
    assert unwrap_envelope(upstream_wrap(MSG, KEY), KEY) == MSG
    assert unwrap_envelope(upstream_wrap(MSG, KEY, hex=False), KEY) == MSG


def test_our_envelope_is_upstreams_format() -> None:
    data = wrap_envelope(MSG, KEY)
    payload, mac = data[:-64], data[-64:]
    assert mac == hmac.new(KEY.encode(), payload, hashlib.sha256).hexdigest().encode()
    assert json.loads(zlib.decompress(payload)) == MSG


@pytest.mark.parametrize(("data", "reason"), [
    (wrap_envelope(MSG, "other"), "bad_signature"),
    # one byte lost: the tail is still hex, so it is indistinguishable from a forgery without
    # decompressing, which is never done before the signature verifies
    (wrap_envelope(MSG, KEY)[:-1], "bad_signature"),
    (wrap_envelope(MSG, KEY)[:-70], "truncated"),
    (wrap_envelope(MSG, KEY)[:40], "truncated"),
    (upstream_wrap([1, 2], KEY), "malformed"),
    (upstream_wrap({**MSG, "seq": "7"}, KEY), "malformed"),
    (b"not zlib" + hmac.new(KEY.encode(), b"not zlib", hashlib.sha256).hexdigest().encode(),
     "malformed"),
])
def test_rejections_carry_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(HeartbeatRejected) as err:
        unwrap_envelope(data, KEY)
    assert err.value.reason == reason


CFG = """global
frontend L1
    mode http
    default_backend P1

backend P1
    server M1 192.0.2.5:80 check
"""


def rows(bin_: int, status: str = "UP", weight: int = 1) -> dict:
    return {"L1/FRONTEND": {"pxname": "L1", "svname": "FRONTEND", "status": "OPEN", "bin": bin_,
                            "bout": 2 * bin_, "stot": 1, "ereq": 0, "scur": 4},
            "P1/BACKEND": {"pxname": "P1", "svname": "BACKEND", "status": "UP"},
            "P1/M1": {"pxname": "P1", "svname": "M1", "status": status, "weight": weight}}


def test_agent_message_is_upstreams_v3_shape_with_deltas() -> None:
    assert pool_owners(CFG) == {"P1": "L1"}
    deltas = StatsDeltas()
    first = build_message("amp", 1, "d1", rows(100), CFG, deltas)
    assert first["listeners"] == {"L1": {"status": "OPEN", "stats": {
        "rx": 100, "tx": 200, "totconns": 1, "ereq": 0, "conns": 4}}}
    assert first["pools"] == {"P1:L1": {"status": "UP", "members": {"M1": "UP"}}}
    assert (first["id"], first["seq"], first["ver"], first["digest"]) == ("amp", 1, 3, "d1")
    again = build_message("amp", 2, "d1", rows(150), CFG, deltas)
    assert again["listeners"]["L1"]["stats"]["rx"] == 50
    # HAProxy reloaded: its counters restarted from zero; the new value is the delta
    reset = build_message("amp", 3, "d1", rows(30, weight=0), CFG, deltas)
    assert reset["listeners"]["L1"]["stats"]["rx"] == 30
    assert reset["pools"]["P1:L1"]["members"] == {"M1": "DRAIN"}


A, B = "4b2c1ad6-0000-4000-8000-00000000000a", "4b2c1ad6-0000-4000-8000-00000000000b"


def test_amphora_envelope_is_signed_with_the_amphoras_own_key() -> None:
    msg = {**MSG, "id": A}
    data = wrap_amphora_envelope(msg, KEY)
    assert data.startswith(b"LBH1\x24" + A.encode())
    body, mac = data[:-64], data[-64:]
    key_a = amphora_key(KEY, A)
    assert mac == hmac.new(key_a.encode(), body, hashlib.sha256).hexdigest().encode()
    assert open_envelope(data, KEY) == msg
    assert len(key_a) == 64 and key_a not in (KEY, amphora_key(KEY, B), amphora_key("x", A))


def test_an_amphoras_key_cannot_sign_for_another_amphora() -> None:
    key_a = amphora_key(KEY, A)  # all amphora A holds
    claim_b = json.dumps({**MSG, "id": B}).encode()
    for data, reason in ((seal_for(claim_b, A, key_a), "wrong_amphora"),  # A's id in clear
                         (seal_for(claim_b, B, key_a), "bad_signature")):  # B's id in clear
        with pytest.raises(HeartbeatRejected) as err:
            open_envelope(data, KEY)
        assert err.value.reason == reason


def test_upstream_envelope_needs_accept_master_key() -> None:
    data = upstream_wrap({**MSG, "id": A}, KEY)
    with pytest.raises(HeartbeatRejected) as err:
        open_envelope(data, KEY)
    assert err.value.reason == "master_key"
    assert open_envelope(data, KEY, accept_master_key=True)["id"] == A


def test_agent_heartbeat_opens_with_the_master_key(tmp_path: Any) -> None:
    """The agent, given only its derived key, sends what the health manager accepts."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sender = HeartbeatSender(A, str(tmp_path), [sock.getsockname()],
                                 amphora_key(KEY, A))
        sender.beat(haproxy_running=False)
        msg = open_envelope(sock.recv(65536), KEY)
    assert msg["id"] == A and msg["listeners"] == {}


def test_agent_sends_every_heartbeat_to_every_health_manager(tmp_path: Any) -> None:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
        sender = HeartbeatSender(A, str(tmp_path), [s.getsockname() for s in socks],
                                 amphora_key(KEY, A))
        for _ in range(2):
            sender.beat(haproxy_running=False)
        seqs = [[open_envelope(s.recv(65536), KEY)["seq"] for _ in range(2)] for s in socks]
    finally:
        for sock in socks:
            sock.close()
    assert seqs[0] == seqs[1] == seqs[2] and seqs[0][0] < seqs[0][1]
