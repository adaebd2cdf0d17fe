"""Two ``lbaas serve`` instances on one host, and an address the host uses (issue 11 items 1, 2).

Each test starts a real server on its own random networks (``own_networks``). The second
instance of a pair uses the same settings file, hence the same networks and bridges: it must
refuse to start, naming the first one's data directory and the settings to change, and its
``lbaas teardown`` must leave the first one's bridges serving. The "used address" is injected
through the ``networking.host_used_addresses`` setting, never by editing /etc/hosts.
"""

from __future__ import annotations

import subprocess

import pytest
from l7_helpers import (
    LBAAS,
    free_port,
    http_get,
    leftovers,
    own_networks,
    skip_reason,
    start_server,
    stop_server,
)

from lbaas.drivers.local import names
from lbaas.store.seed import network_id

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def route_get(address: str) -> str:
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True)
    return (out.stdout + out.stderr).split(" uid ")[0].strip()


def bridge_of(subnet_name: str) -> str:
    return names.bridge_name(network_id(subnet_name.removesuffix("-subnet")))


def test_a_second_instance_on_the_same_networks_refuses_to_start() -> None:
    toml, subnets = own_networks()
    first = start_server(toml)
    cidrs: list[str] = []
    second_dir = first.root / "second"  # short: HAProxy's socket path limit
    try:
        cidrs = [first.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        backend = cidrs[1].rsplit(".", 1)[0] + ".50"
        first.backend(subnets["priv"], backend)
        lb = first.show("loadbalancer", "create", "--name", "one", "--vip-subnet-id",
                        subnets["pub"])
        first.wait_active(lb["id"])
        for args in (("listener", "create", "--name", "web", "--protocol", "HTTP",
                      "--protocol-port", "80", lb["id"]),
                     ("pool", "create", "--name", "p", "--listener", "web", "--protocol",
                      "HTTP", "--lb-algorithm", "ROUND_ROBIN"),
                     ("member", "create", "--subnet-id", subnets["priv"], "--address",
                      backend, "--protocol-port", "80", "p")):
            first.openstack("loadbalancer", *args)
            first.wait_active(lb["id"])
        vip = f"http://{lb['vip_address']}/"
        status, body = http_get(vip)[:2]
        assert (status, body.split("\n", 1)[0]) == (200, f"backend {backend}")

        config = first.config
        assert config is not None
        argv = ["--config", str(config), "--data-dir", str(second_dir)]
        second = subprocess.run([LBAAS, "serve", "--port", str(free_port()), *argv],
                                capture_output=True, text=True, timeout=120, env=first.env)
        first_dir = str((first.root / "data").resolve())
        assert second.returncode != 0, second.stdout + second.stderr
        assert first_dir in second.stderr and "networking.networks" in second.stderr, \
            second.stderr
        assert "Traceback" not in second.stderr, second.stderr

        # the second one's teardown removes nothing of the first one's
        down = subprocess.run([LBAAS, "teardown", *argv], capture_output=True, text=True,
                              timeout=120, env=first.env)
        assert down.returncode == 0, down.stderr
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert all(bridge_of(s) in links for s in subnets.values())
        status, body = http_get(vip)[:2]
        assert (status, body.split("\n", 1)[0]) == (200, f"backend {backend}")
    finally:
        stop_server(first)
        if cidrs:
            assert leftovers(cidrs) == []


def test_an_address_the_host_uses_keeps_its_route_while_an_amphora_runs() -> None:
    toml, subnets = own_networks()
    pub_prefix = toml.split('cidr = "')[1].split(".0/24")[0]  # (the first network is "pub")
    used = f"{pub_prefix}.80"  # stands in for a package registry inside the public range
    toml = toml.replace("[networking]\n", f'[networking]\nhost_used_addresses = ["{used}"]\n',
                        1)
    before = route_get(used)
    server = start_server(toml)
    cidrs: list[str] = []
    try:
        pub = server.show("subnet", "show", subnets["pub"])
        assert pub["cidr"] == f"{pub_prefix}.0/24"
        cidrs = [server.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        lb = server.show("loadbalancer", "create", "--name", "one", "--vip-subnet-id",
                         subnets["pub"])
        server.wait_active(lb["id"])  # an amphora is up, with its VIP leg on that bridge
        assert route_get(used) == before
        assert bridge_of(subnets["pub"]) not in route_get(used)
        log = (server.root / "server.log").read_text()
        assert f"contains {used}" in log and "stays isolated" in log
        # the other networks are still the host's to reach
        assert bridge_of(subnets["priv"]) in route_get(cidrs[1].rsplit(".", 1)[0] + ".9")
    finally:
        stop_server(server)
        if cidrs:
            assert leftovers(cidrs) == []
    assert route_get(used) == before
