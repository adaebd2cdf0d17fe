"""End to end through the openstack CLI and real amphorae: Octavia's L7 cookbook, a PROMETHEUS
listener scraped through the VIP, and floating IPs reaching a VIP on the isolated private net.

The L7 and PROMETHEUS tests run on their own networks (TOML config); the floating-IP scenario
is the seed's, verbatim, so it needs the default networks (and skips when another data plane
already holds their bridges). Every server is stopped and ``lbaas teardown``-ed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

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

from lbaas.drivers.local import names
from lbaas.drivers.local.router import router_netns
from lbaas.store import seed

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))


def netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def eventually(check: Any, timeout: float = 20, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, OSError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"still failing after {timeout}s: {exc}") from exc
            time.sleep(interval)


@pytest.fixture(scope="module")
def cookbook() -> Iterator[tuple[Server, dict[str, str], dict[str, Any]]]:
    toml, subnets = own_networks()
    server = start_server(toml)
    cidrs: list[str] = []
    try:
        cidrs += [server.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        net = cidrs[1].rsplit(".", 1)[0]
        web, static = f"{net}.51", f"{net}.52"
        server.backend(subnets["priv"], web)
        server.backend(subnets["priv"], static)
        os_ = server.openstack
        lb = server.show("loadbalancer", "create", "--name", "lb1", "--vip-subnet-id",
                         subnets["pub"])
        server.wait_active("lb1")
        steps = [
            ["listener", "create", "--name", "http_listener", "--protocol", "HTTP",
             "--protocol-port", "80", "lb1"],
            ["pool", "create", "--name", "default_pool", "--lb-algorithm", "ROUND_ROBIN",
             "--listener", "http_listener", "--protocol", "HTTP"],
            ["member", "create", "--subnet-id", subnets["priv"], "--address", web,
             "--protocol-port", "80", "default_pool"],
            ["pool", "create", "--name", "static_pool", "--lb-algorithm", "ROUND_ROBIN",
             "--loadbalancer", "lb1", "--protocol", "HTTP"],
            ["member", "create", "--subnet-id", subnets["priv"], "--address", static,
             "--protocol-port", "80", "static_pool"],
            ["l7policy", "create", "--action", "REDIRECT_TO_POOL", "--redirect-pool",
             "static_pool", "--name", "static_by_path", "http_listener"],
            ["l7rule", "create", "--compare-type", "STARTS_WITH", "--type", "PATH",
             "--value", "/js", "static_by_path"],
            ["l7policy", "create", "--action", "REDIRECT_TO_POOL", "--redirect-pool",
             "static_pool", "--name", "static_by_host", "http_listener"],
            ["l7rule", "create", "--compare-type", "EQUAL_TO", "--type", "HOST_NAME",
             "--value", "static.example.com", "static_by_host"],
            # position 1: checked before the pool redirects
            ["l7policy", "create", "--action", "REJECT", "--position", "1", "--name",
             "reject_bad", "http_listener"],
            ["l7rule", "create", "--compare-type", "EQUAL_TO", "--type", "HEADER", "--key",
             "X-Bad-Client", "--value", "yes", "reject_bad"],
            ["listener", "create", "--name", "plain_listener", "--protocol", "HTTP",
             "--protocol-port", "8080", "lb1"],
            ["l7policy", "create", "--action", "REDIRECT_PREFIX", "--redirect-prefix",
             "https://www.example.com", "--redirect-http-code", "301", "--name",
             "to_https", "plain_listener"],
            ["l7rule", "create", "--compare-type", "STARTS_WITH", "--type", "PATH",
             "--value", "/", "to_https"],
            ["listener", "create", "--name", "metrics", "--protocol", "PROMETHEUS",
             "--protocol-port", "9100", "lb1"],
        ]
        for step in steps:
            os_("loadbalancer", *step)
            server.wait_active("lb1")
        ids = {n: server.show("loadbalancer", "pool", "show", n)["id"]
               for n in ("default_pool", "static_pool")}
        yield server, {"vip": lb["vip_address"], "web": web, "static": static}, ids
    finally:
        stop_server(server)
    assert not leftovers(cidrs), leftovers(cidrs)


def test_l7_cookbook(cookbook: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    _, where, _ = cookbook
    vip = where["vip"]
    body = eventually(lambda: _ok(http_get(f"http://{vip}/")))
    assert body == f"backend {where['web']}"
    assert _ok(http_get(f"http://{vip}/", {"Host": "static.example.com"})) == \
        f"backend {where['static']}"
    assert http_get(f"http://{vip}/", {"X-Bad-Client": "yes"})[0] == 403
    assert http_get(f"http://{vip}/", {"X-Bad-Client": "yes",
                                        "Host": "static.example.com"})[0] == 403
    status, _, location = http_get(f"http://{vip}:8080/some/page?q=1")
    assert (status, location) == (301, "https://www.example.com/some/page?q=1")


def test_path_policy_and_prometheus_scrape_through_the_vip(
        cookbook: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    """/js goes to the static pool (its demo backend echoes the path), and the per-backend
    counters of the PROMETHEUS listener tell which pool served it."""
    from prometheus_client.parser import text_string_to_metric_families

    _, where, pools = cookbook
    vip = where["vip"]

    def responses() -> dict[str, float]:
        status, text, _ = http_get(f"http://{vip}:9100/metrics")
        assert status == 200
        out = {pool: 0.0 for pool in pools.values()}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "haproxy_backend_http_responses_total" and \
                        s.labels.get("proxy") in out:
                    out[s.labels["proxy"]] += s.value
        return out

    before = eventually(responses)
    for _ in range(5):
        status, body, _ = http_get(f"http://{vip}/js/app.js")
        assert status == 200 and body.startswith(f"backend {where['static']}\n")
        assert "\nGET /js/app.js HTTP/1.1\n" in body
    after = responses()
    assert after[pools["static_pool"]] - before[pools["static_pool"]] == 5
    assert after[pools["default_pool"]] == before[pools["default_pool"]]
    assert http_get(f"http://{vip}:9100/")[0] == 404


@pytest.fixture
def default_plane() -> Iterator[tuple[Server, list[str]]]:
    bridges = {names.bridge_name(seed.network_id(n)) for n in ("public", "private",
                                                                "lb-mgmt-net")}
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if any(f": {b}:" in links for b in bridges):
        pytest.skip("another lbaas data plane holds the default networks' bridges")
    server = start_server(None)
    routers: list[str] = []
    yield server, routers
    stop_server(server)
    assert not set(routers) & netns(), "lbaas teardown left the router namespace"


def test_floating_ip_reaches_members_on_the_isolated_private_network(
        default_plane: tuple[Server, list[str]]) -> None:
    """The seed's scenario verbatim, on the default networks (run under the default-networks
    lock); members are reached from the host only through the floating IP's router."""
    server, routers = default_plane
    routers.append(floating_scenario(server, "private-subnet", "public", "10.0.0", teardown=False))


def test_floating_ip_on_own_networks() -> None:
    """The same through an external network made with the Neutron API (runs beside others)."""
    toml, subnets = own_networks()
    server = start_server(toml)
    cidrs: list[str] = []
    router = ""
    try:
        ext = subnets["priv"].replace("priv-subnet", "ext")
        block = server.show("subnet", "show", subnets["pub"])["cidr"].rsplit(".", 2)[0]
        third = int(server.show("subnet", "show", subnets["pub"])["cidr"].split(".")[2])
        cidr = f"{block}.{(third + 3) % 256}.0/24"
        cidrs += [server.show("subnet", "show", s)["cidr"] for s in subnets.values()] + [cidr]
        server.openstack("network", "create", "--external", ext)
        server.openstack("subnet", "create", "--network", ext, "--subnet-range", cidr,
                         f"{ext}-subnet")
        net = server.show("subnet", "show", subnets["priv"])["cidr"].rsplit(".", 1)[0]
        router = floating_scenario(server, subnets["priv"], ext, net, teardown=True)
    finally:
        stop_server(server)
    assert router not in netns(), "lbaas teardown left the router namespace"
    assert not leftovers(cidrs), leftovers(cidrs)


def floating_scenario(server: Server, private: str, public: str, net: str,
                      teardown: bool) -> str:
    """Returns the router namespace; with ``teardown`` False the floating IP stays associated
    at the end, so that ``lbaas teardown`` has a router to remove."""
    members = [f"{net}.51", f"{net}.52"]
    for address in members:
        server.backend(private, address)
    lb = server.show("loadbalancer", "create", "--name", "lb1", "--vip-subnet-id", private)
    server.wait_active("lb1")
    server.openstack("loadbalancer", "listener", "create", "--name", "l1", "--protocol",
                     "HTTP", "--protocol-port", "80", "lb1")
    server.wait_active("lb1")
    server.openstack("loadbalancer", "pool", "create", "--name", "p1", "--lb-algorithm",
                     "ROUND_ROBIN", "--listener", "l1", "--protocol", "HTTP")
    server.wait_active("lb1")
    for address in members:
        server.openstack("loadbalancer", "member", "create", "--subnet-id", private,
                         "--address", address, "--protocol-port", "80", "p1")
        server.wait_active("lb1")

    fip = server.show("floating", "ip", "create", public)
    address = fip["floating_ip_address"]
    server.openstack("floating", "ip", "set", "--port", lb["vip_port_id"], address)
    shown = server.show("floating", "ip", "show", address)
    assert (shown["port_id"], shown["fixed_ip_address"]) == (lb["vip_port_id"],
                                                             lb["vip_address"])
    seen = set()
    for _ in range(8):
        seen.add(eventually(lambda: _ok(http_get(f"http://{address}/", timeout=2))))
    assert seen == {f"backend {m}" for m in members}
    listed = server.openstack("floating", "ip", "list", "-f", "value", "-c",
                              "Floating IP Address")
    assert address in listed.split()

    router = router_netns(shown["router_id"])  # named from the router id the API reports
    assert router in netns()
    server.openstack("floating", "ip", "unset", "--port", address)
    eventually(lambda: _assert(router not in netns()))
    with pytest.raises(OSError):  # nobody holds the floating address any more
        http_get(f"http://{address}/", timeout=1)
    server.openstack("floating", "ip", "set", "--port", lb["vip_port_id"], address)
    eventually(lambda: _ok(http_get(f"http://{address}/", timeout=2)))
    if teardown:
        server.openstack("floating", "ip", "delete", address)
        eventually(lambda: _assert(router not in netns()))
    return router


def _ok(result: tuple[int, str, str]) -> str:
    """The answering demo backend (its first line, "backend <address>")."""
    assert result[0] == 200, result
    return result[1].split("\n", 1)[0]


def _assert(condition: bool) -> None:
    assert condition
