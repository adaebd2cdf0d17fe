"""The agent's UDP/SCTP side without nft: slot dealing equals the renderer's, the rise/fall
state machine, which members a pool map holds, heartbeat entries, and the real probes against
loopback sockets (UDP-CONNECT up on an answering port, down on ICMP port unreachable)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from typing import Any

import pytest

from lbaas.agent import udp_checks
from lbaas.agent.udp import Member, UdpBalancer, deal_slots
from lbaas.render.nftables import SLOTS
from lbaas.render.nftables import deal_slots as render_deal_slots


def test_slot_dealing_matches_the_renderer() -> None:
    rng = random.Random(5)
    for _ in range(50):
        members = [(f"10.0.0.{i} . 53", rng.randint(0, 256)) for i in range(rng.randint(0, 6))]
        assert deal_slots(members, SLOTS) == render_deal_slots(members)


def spec(n: int, backup: bool = False, weight: int = 1) -> dict[str, Any]:
    return {"id": f"m{n}", "address": f"10.0.0.{n}", "port": 53, "weight": weight,
            "backup": backup, "check_address": f"10.0.0.{n}", "check_port": 53}


def test_member_goes_down_after_fall_and_up_after_rise() -> None:
    m = Member(spec(1))
    assert [m.record(False, 2, 3) for _ in range(3)] == [False, False, True] and not m.up
    assert m.record(None, 2, 3) is False and not m.up  # unknown changes nothing
    assert [m.record(True, 2, 3) for _ in range(2)] == [False, True] and m.up
    m.record(False, 2, 3)
    m.record(True, 2, 3)  # a good probe resets the count of failures
    assert [m.record(False, 2, 3) for _ in range(3)] == [False, False, True]


def balancer(*members: dict[str, Any]) -> UdpBalancer:
    b = UdpBalancer()
    b.pools = {"pool_x": {"pool_id": "P", "listener_id": "L", "members": list(members),
                          "monitor": {"type": "UDP-CONNECT"}}}
    b.members = {"pool_x": [Member(m) for m in members]}
    return b


def test_map_holds_live_primaries_then_backups() -> None:
    b = balancer(spec(1), spec(2, weight=3), spec(3, backup=True))
    served = {e.split(" : ")[1] for e in b.map_elements("pool_x")}
    assert served == {"10.0.0.1 . 53", "10.0.0.2 . 53"}
    b.members["pool_x"][0].up = b.members["pool_x"][1].up = False
    assert {e.split(" : ")[1] for e in b.map_elements("pool_x")} == {"10.0.0.3 . 53"}
    b.members["pool_x"][2].up = False
    assert b.map_elements("pool_x") == []
    assert b.heartbeat_pools() == {"P:L": {"status": "DOWN", "members": {
        "m1": "DOWN", "m2": "DOWN", "m3": "DOWN"}}}


def test_expected_codes() -> None:
    assert udp_checks.expected(204, "200-204") and not udp_checks.expected(205, "200-204")
    assert udp_checks.expected(202, "200,202") and not udp_checks.expected(201, "200,202")


@pytest.fixture
def udp_answering() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            sock.sendto(b"backend x\n", addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def test_udp_connect_probe_up_and_down(udp_answering: int) -> None:
    monitor = {"type": "UDP-CONNECT", "timeout": 1}
    assert asyncio.run(udp_checks.probe(monitor, "127.0.0.1", udp_answering)) is True
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the kernel answers port unreachable
    assert asyncio.run(udp_checks.probe(monitor, "127.0.0.1", port)) is False


def test_tcp_probe_and_sctp_unknown() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    assert asyncio.run(udp_checks.probe({"type": "TCP", "timeout": 1}, "127.0.0.1", port))
    listener.close()
    assert asyncio.run(udp_checks.probe({"type": "TCP", "timeout": 1}, "127.0.0.1", port)) \
        is False
    assert asyncio.run(udp_checks.probe({"type": "SCTP", "timeout": 1}, "127.0.0.1", 1)) is None


def test_heartbeat_carries_udp_listeners_and_member_statuses(tmp_path: Any) -> None:
    """The worker publishes its UDP check results; the supervisor's next heartbeat has them."""
    from lbaas.agent.heartbeat import HeartbeatSender
    from lbaas.agent.worker import UdpStatusPublisher

    b = balancer(spec(1), spec(2))
    b.loaded = True
    b.listeners = ["L"]
    b.members["pool_x"][1].up = False
    (tmp_path / "run").mkdir()

    class FakeAgent:
        udp = b
        store = type("S", (), {"run": tmp_path / "run"})()

    publisher = UdpStatusPublisher(FakeAgent(), 1.0)  # type: ignore[arg-type]
    publisher.publish()
    sender = HeartbeatSender("amp", str(tmp_path), [("127.0.0.1", 9)], "k")
    msg = sender.message(haproxy_running=False)
    assert msg["listeners"]["L"]["status"] == "OPEN"
    assert msg["pools"]["P:L"] == {"status": "UP", "members": {"m1": "UP", "m2": "DOWN"}}

    b.loaded = False  # the rules are gone: so is the file, and the heartbeat entries
    publisher.publish()
    assert sender.message(haproxy_running=False)["pools"] == {}
