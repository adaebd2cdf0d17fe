"""A VIP cannot relay into the management network, whatever the database says (issue 10 item 2).

Member rows are written straight into the database, past the API's checks, with addresses on
the management network: the health manager's address (the management gateway, on this host)
with a port a test listener holds there, and the amphora's own agent (its management address,
port 9443). The amphora renders them, yet requests through the VIP never reach either: HAProxy
runs in the amphora's data namespace, which has no management leg and a ``prohibit`` route for
the management subnet and the health manager. The same for a UDP pool (nftables DNAT in the
data namespace) with a member at the health manager's address. The ordinary members keep
answering. On a single-namespace amphora the listeners are reached (HAProxy and the rules sat
beside the management leg).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from l7_helpers import http_get, leftovers, own_networks, skip_reason, start_server, stop_server
from test_udp_e2e import UDP_PORT, ask, udp_backend

from lbaas.drivers.local import names

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


class Listener:
    """A TCP server on the management gateway that counts every connection it accepts."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nMGMT\n")
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class UdpSink:
    """A UDP socket on the management gateway that counts every datagram."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sock.recv(2048)
            except OSError:
                continue
            self.received += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def insert_members(db: Path, like_member: str, targets: list[tuple[str, int, str]]) -> None:
    """Copies of member ``like_member`` at (address, port, subnet id), then a new generation
    of its load balancer so the controller's resync applies them."""
    with sqlite3.connect(db, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM member WHERE id = ?", (like_member,)).fetchone())
        for address, port, subnet_id in targets:
            copy = {**row, "id": str(uuid.uuid4()), "address": address,
                    "protocol_port": port, "subnet_id": subnet_id, "name": "planted"}
            cols = ", ".join(copy)
            conn.execute(f"INSERT INTO member ({cols}) VALUES ({', '.join('?' * len(copy))})",
                         list(copy.values()))
        lb_id = conn.execute("SELECT load_balancer_id FROM pool WHERE id = ?",
                             (row["pool_id"],)).fetchone()[0]
        conn.execute("UPDATE load_balancer SET generation = generation + 1 WHERE id = ?",
                     (lb_id,))


def test_planted_members_on_the_management_network_get_no_traffic() -> None:
    toml, subnets = own_networks()
    toml += "\n[controller]\nresync_interval = 1.0\n"
    server = start_server(toml)
    cidrs: list[str] = []
    listener: Listener | None = None
    sink: UdpSink | None = None
    try:
        show: dict[str, dict[str, Any]] = {r: server.show("subnet", "show", s)
                                           for r, s in subnets.items()}
        cidrs = [s["cidr"] for s in show.values()]
        mgmt_gw = show["mgmt"]["gateway_ip"]  # where the health manager listens
        listener = Listener(mgmt_gw)
        backend = show["priv"]["cidr"].rsplit(".", 1)[0] + ".50"
        udp_backend(server, subnets["priv"], backend)  # HTTP on 80, UDP echo on UDP_PORT
        sink = UdpSink(mgmt_gw)
        lb, _pool, member = server.http_lb("iso", subnets["pub"], subnets["priv"], backend)
        vip = f"http://{lb['vip_address']}/"
        status, body = http_get(vip)[:2]
        assert (status, body.split("\n", 1)[0]) == (200, f"backend {backend}")
        server.openstack("loadbalancer", "listener", "create", "--name", "dns", "--protocol",
                         "UDP", "--protocol-port", "53", lb["id"])
        server.wait_active(lb["id"])
        udp_pool = server.show("loadbalancer", "pool", "create", "--listener", "dns",
                               "--protocol", "UDP", "--lb-algorithm", "ROUND_ROBIN")
        server.wait_active(lb["id"])
        udp_member = server.show("loadbalancer", "member", "create", "--subnet-id",
                                 subnets["priv"], "--address", backend, "--protocol-port",
                                 str(UDP_PORT), udp_pool["id"])
        server.wait_active(lb["id"])

        amps = json.loads(server.openstack(
            "loadbalancer", "amphora", "list", "--loadbalancer", lb["id"], "-f", "json"))
        assert len(amps) == 1
        amp = server.show("loadbalancer", "amphora", "show", amps[0]["id"])
        agent = (amp["lb_network_ip"], 9443)
        data = server.root / "data"
        insert_members(data / "lbaas.sqlite", member["id"], [
            (mgmt_gw, listener.port, show["mgmt"]["id"]), (*agent, show["mgmt"]["id"])])
        insert_members(data / "lbaas.sqlite", udp_member["id"], [
            (mgmt_gw, sink.port, show["mgmt"]["id"])])  # the health manager's address
        conf = data / "amphorae" / amp["compute_id"] / "agent" / "conf"
        cfg, nft = conf / "haproxy.cfg", conf / "nftables.conf"
        deadline = time.monotonic() + 30
        while f"{mgmt_gw}:{listener.port}" not in cfg.read_text() \
                or f"{mgmt_gw} . {sink.port}" not in nft.read_text():
            assert time.monotonic() < deadline, "the planted members were never rendered"
            time.sleep(0.2)
        assert f"{agent[0]}:{agent[1]}" in cfg.read_text()
        # HAProxy runs where the VIP leg is, and no management leg is there
        data_ns = names.data_netns_of(amp["compute_id"])
        pids = set(subprocess.run(["ip", "netns", "pids", data_ns], capture_output=True,
                                  text=True).stdout.split())
        assert any(b"haproxy" in Path(f"/proc/{p}/cmdline").read_bytes() for p in pids)
        assert names.MGMT_LEG not in subprocess.run(["ip", "-n", data_ns, "-o", "link"],
                                                   capture_output=True, text=True).stdout

        time.sleep(1.0)  # the apply may be a runtime change or a reload: let it settle
        answers = [http_get(vip, timeout=5)[:2] for _ in range(30)]
        ok = [body for status, body in answers if status == 200]
        assert listener.accepted == 0, f"the management network was reached: {answers}"
        assert ok and all(body.startswith(f"backend {backend}\n") for body in ok), answers
        assert not any("MGMT" in body for _, body in answers)
        # UDP: nftables in the data namespace DNATs half the flows to the planted member
        seen = ask(lb["vip_address"], 53, 30)
        assert sink.received == 0, f"the health manager's address was reached: {seen}"
        assert sum(n for who, n in seen.items() if who != "(no answer)") > 0, seen
    finally:
        if listener is not None:
            listener.close()
        if sink is not None:
            sink.close()
        stop_server(server)
        if cidrs:
            assert leftovers(cidrs) == []
