"""From the management network an amphora reaches the health manager's heartbeat port only.

The management gateway is an address of this host, and services bound to 0.0.0.0 (RabbitMQ,
the database, the API's internals) listen on it too. The host guard's table covers the
management bridge as well: a TCP service on the gateway address is refused from inside an
amphora's management namespace, while its heartbeats keep arriving (the load balancer goes and
stays ONLINE) and the controller's agent calls keep working (the load balancer is built and
changed: ACTIVE after each step; traffic through the VIP is served).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import pytest
from l7_helpers import (
    Server,
    http_get,
    leftovers,
    own_networks,
    skip_reason,
    start_server,
    stop_server,
)
from test_amphora_isolation_e2e import Listener

from lbaas.drivers.local import host_guard, names, ownership

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

_CONNECT = ("import socket, sys\n"
            "try:\n"
            "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print('refused', exc)\n")


def _connect_from(ns: str, address: str, port: int) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", _CONNECT, address,
                           str(port)], capture_output=True, text=True, timeout=30).stdout


def _operating(server: Server, lb_id: str) -> str:
    return str(server.show("loadbalancer", "show", lb_id)["operating_status"])


def test_an_amphora_reaches_only_the_heartbeat_port_on_the_management_gateway() -> None:
    toml, subnets = own_networks()
    toml += "\n[controller]\nresync_interval = 1.0\n"
    server = start_server(toml)
    table = host_guard.table_name(ownership.mark_for(server.root / "data"))
    cidrs: list[str] = []
    listener: Listener | None = None
    try:
        show = {r: server.show("subnet", "show", s) for r, s in subnets.items()}
        cidrs = [s["cidr"] for s in show.values()]
        mgmt_gw = show["mgmt"]["gateway_ip"]
        listener = Listener("0.0.0.0")  # a host service on every address, the gateway's too
        backend = show["priv"]["cidr"].rsplit(".", 1)[0] + ".50"
        server.backend(subnets["priv"], backend)
        # every step below is agent calls (controller -> amphora, replies come back through the
        # guard): ACTIVE after each
        lb, _, _ = server.http_lb("mg", subnets["pub"], subnets["priv"], backend)
        deadline = time.monotonic() + 30
        while _operating(server, lb["id"]) != "ONLINE":  # heartbeats got through
            assert time.monotonic() < deadline, "the load balancer never went ONLINE"
            time.sleep(0.3)
        amp_id = server.openstack("loadbalancer", "amphora", "list", "--loadbalancer",
                                  lb["id"], "-f", "value", "-c", "id").split()[0]
        amp = server.show("loadbalancer", "amphora", "show", amp_id)
        mgmt_ns = amp["compute_id"]
        assert mgmt_ns.startswith(names.AMP_NETNS_PREFIX)

        # the host itself reaches its service on the gateway address (the listener is there)
        with socket.create_connection((mgmt_gw, listener.port), timeout=3):
            pass
        assert _wait(lambda: listener.accepted == 1)
        # the amphora's management namespace does not
        answer = _connect_from(mgmt_ns, mgmt_gw, listener.port)
        assert answer.startswith("refused"), answer
        assert listener.accepted == 1
        rules = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True,
                               text=True).stdout
        assert names.bridge_name(show["mgmt"]["network_id"]) in rules, rules

        # heartbeats keep arriving: well past heartbeat_timeout (3 s) no failover, still ONLINE
        time.sleep(5)
        assert server.openstack("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"],
                                "-f", "value", "-c", "id").split() == [amp_id]
        assert _operating(server, lb["id"]) == "ONLINE"
        # and the controller's agent calls still work: a change goes ACTIVE and is served
        server.openstack("loadbalancer", "listener", "create", "--name", "web2", "--protocol",
                         "HTTP", "--protocol-port", "8080", lb["id"])
        server.wait_active(lb["id"])
        status, body, _ = http_get(f"http://{lb['vip_address']}/", timeout=8)
        assert status == 200 and body.startswith(f"backend {backend}\n"), (status, body)
    finally:
        if listener is not None:
            listener.close()
        stop_server(server)
    assert leftovers(cidrs) == []


def _wait(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
