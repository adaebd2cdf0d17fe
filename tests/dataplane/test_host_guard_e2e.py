"""Tenant traffic never reaches the host, and tenant networks never touch its routes.

- A member at a subnet's gateway address is the host itself. The API refuses it, and a member
  row planted straight into the database (past the API) still gets no connection through to a
  listener on the host: the host's ``inet lbaas_guard_*`` table refuses new connections that
  arrive on the instance's tenant-facing bridges.
- A project's own subnet is never attached to the host (no host address, no route), as in
  Neutron: a range the host reaches elsewhere (198.18.0.0/15 goes out of the default route
  here) keeps going there while a load balancer lives in it, and two projects can use the same
  range at once, each load balancer serving its own backend to clients on its own network.
"""

from __future__ import annotations

import random
import subprocess
import time
from typing import Any

import pytest
from l7_helpers import (
    OPENSTACK,
    http_get,
    leftovers,
    own_networks,
    skip_reason,
    start_server,
    stop_server,
)
from test_amphora_isolation_e2e import Listener, insert_members

from lbaas.drivers.local import host_guard, names, ownership

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def _tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def _get(url: str) -> tuple[int, str]:
    try:
        status, body, _ = http_get(url, timeout=8)
    except OSError as exc:
        return 0, str(exc)
    return status, body


def test_planted_member_at_a_gateway_never_reaches_the_host() -> None:
    toml, subnets = own_networks()
    toml += "\n[controller]\nresync_interval = 1.0\n"
    server = start_server(toml)
    table = host_guard.table_name(ownership.mark_for(server.root / "data"))
    cidrs: list[str] = []
    listener: Listener | None = None
    try:
        show = {r: server.show("subnet", "show", s) for r, s in subnets.items()}
        cidrs = [s["cidr"] for s in show.values()]
        listener = Listener("0.0.0.0")  # a host service on every address, as RabbitMQ's 5672
        backend = show["priv"]["cidr"].rsplit(".", 1)[0] + ".50"
        server.backend(subnets["priv"], backend)
        lb, pool, member = server.http_lb("gw", subnets["pub"], subnets["priv"], backend)

        priv_gw, pub_gw = show["priv"]["gateway_ip"], show["pub"]["gateway_ip"]
        # the API's layer: a member at a gateway is refused with Octavia's message
        refused = subprocess.run(
            [OPENSTACK, "loadbalancer", "member", "create", "--subnet-id", subnets["priv"],
             "--address", priv_gw, "--protocol-port", str(listener.port), pool["id"]],
            env=server.env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "is not a valid option for member address" \
            in refused.stderr and "(HTTP 400)" in refused.stderr, refused.stderr

        # the data plane's layer: rows written past the API, at the member subnet's gateway and
        # at the VIP subnet's (the amphora's default route), with the host listener's port
        data = server.root / "data"
        insert_members(data / "lbaas.sqlite", member["id"], [
            (priv_gw, listener.port, show["priv"]["id"]),
            (pub_gw, listener.port, show["pub"]["id"])])
        amps = server.openstack("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"],
                                "-f", "value", "-c", "id").split()
        amp = server.show("loadbalancer", "amphora", "show", amps[0])
        cfg = data / "amphorae" / amp["compute_id"] / "agent" / "conf" / "haproxy.cfg"
        deadline = time.monotonic() + 30
        while f"{priv_gw}:{listener.port}" not in cfg.read_text() \
                or f"{pub_gw}:{listener.port}" not in cfg.read_text():
            assert time.monotonic() < deadline, "the planted members were never rendered"
            time.sleep(0.2)
        time.sleep(1.0)  # the apply may be a runtime change or a reload: let it settle
        vip = f"http://{lb['vip_address']}/"
        answers = [_get(vip) for _ in range(24)]
        assert listener.accepted == 0, f"the host was reached through the VIP: {answers}"
        assert not any("MGMT" in body for _, body in answers), answers
        ok = [body for status, body in answers if status == 200]
        assert ok and all(body.startswith(f"backend {backend}\n") for body in ok), answers
        # (the host's own requests to the VIP, whose replies come in on a guarded bridge, work)
        assert f"table inet {table}" in _tables()
    finally:
        if listener is not None:
            listener.close()
        stop_server(server)
    assert f"table inet {table}" not in _tables(), "lbaas teardown left the guard table"
    assert leftovers(cidrs) == []


def _route(address: str) -> str:
    """``ip route get``'s answer without its per-lookup cache details."""
    out = subprocess.run(["ip", "-4", "route", "get", address], capture_output=True,
                         text=True).stdout.split()
    keep = []
    for key in ("via", "dev", "src"):
        if key in out:
            keep.append(f"{key} {out[out.index(key) + 1]}")
    return " ".join(keep)


def _host_holds(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f" {prefix}." in line]


def _fetch_in(ns: str, url: str) -> str:
    """The body's first line as seen by a client inside ``ns`` ("ERR" on failure)."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", "5", url],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.split("\n", 1)[0] if proc.returncode == 0 else f"ERR {proc.stderr}"


def _project_lb(server: Any, project: str, cidr: str, vip: str) -> dict[str, Any]:
    net = server.show("network", "create", "--project", project, f"{project}-net")
    sub = server.show("subnet", "create", "--project", project, "--network", net["id"],
                      "--subnet-range", cidr, f"{project}-subnet")
    assert not net["shared"] and not net["router:external"]
    lb = server.show("loadbalancer", "create", "--name", f"{project}-lb", "--project", project,
                     "--vip-subnet-id", sub["id"], "--vip-address", vip)
    return {"net": net, "sub": sub, "lb": lb}


def test_project_networks_stay_off_the_host_and_may_overlap() -> None:
    toml, subnets = own_networks()
    toml += "\n[controller]\nresync_interval = 1.0\n"
    # a range the host reaches through its default route (benchmarking range, RFC 2544)
    prefix = f"198.18.{random.randint(100, 250)}"
    cidr, vip = f"{prefix}.0/24", f"{prefix}.80"
    before = _route(vip)
    assert "lbr" not in before, before
    server = start_server(toml)
    cidrs = [cidr]
    try:
        cidrs += [server.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        made = {p: _project_lb(server, p, cidr, vip) for p in ("guarda", "guardb")}
        backends = {"guarda": f"{prefix}.50", "guardb": f"{prefix}.51"}
        for item in made.values():
            server.wait_active(item["lb"]["id"], timeout=120)
            assert item["lb"]["vip_address"] == vip
        # the host's routes and addresses are those of before
        assert _route(vip) == before
        assert _host_holds(prefix) == []
        for item in made.values():
            bridge = names.bridge_name(item["net"]["id"])
            shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge],
                                   capture_output=True, text=True)
            assert shown.returncode == 0 and shown.stdout == "", (bridge, shown)
        # both load balancers serve their own backend on their own network
        for project, item in made.items():
            server.backend(item["sub"]["id"], backends[project])
            lb_id = item["lb"]["id"]
            server.openstack("loadbalancer", "listener", "create", "--name", f"{project}-web",
                             "--protocol", "HTTP", "--protocol-port", "80", lb_id)
            server.wait_active(lb_id)
            pool = server.show("loadbalancer", "pool", "create", "--listener",
                               f"{project}-web", "--protocol", "HTTP", "--lb-algorithm",
                               "ROUND_ROBIN")
            server.wait_active(lb_id)
            server.openstack("loadbalancer", "member", "create", "--subnet-id",
                             item["sub"]["id"], "--address", backends[project],
                             "--protocol-port", "80", pool["id"])
            server.wait_active(lb_id)
        for project, address in backends.items():
            client = names.backend_netns(address)  # a client on that project's network only
            seen = {_fetch_in(client, f"http://{vip}/") for _ in range(4)}
            assert seen == {f"backend {address}"}, (project, seen)
        # from the host: through a floating IP on an external (operator) network, one router
        # per project subnet, as in Neutron
        ext = subnets["pub"].replace("pub-subnet", "ext")
        pub = cidrs[1].split(".")
        ext_cidr = f"{pub[0]}.{pub[1]}.{(int(pub[2]) + 3) % 256}.0/24"
        cidrs.append(ext_cidr)
        server.openstack("network", "create", "--external", ext)
        server.openstack("subnet", "create", "--network", ext, "--subnet-range", ext_cidr,
                         f"{ext}-subnet")
        for project, item in made.items():
            fip = server.show("floating", "ip", "create", ext)["floating_ip_address"]
            server.openstack("floating", "ip", "set", "--port", item["lb"]["vip_port_id"], fip)
            seen = {_first_line(fip) for _ in range(4)}
            assert seen == {f"backend {backends[project]}"}, (project, seen)
        assert _route(vip) == before
    finally:
        stop_server(server)
    assert _route(vip) == before
    assert leftovers(cidrs) == []


def _first_line(address: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        status, body = _get(f"http://{address}/")
        if status == 200 or time.monotonic() > deadline:
            return body.split("\n", 1)[0]
        time.sleep(0.3)
