"""Local network and compute drivers against the real kernel (root): an amphora's two namespaces
(management leg in one, VIP and member legs in the other); reachability from the host and to a
backend; the data namespace cannot reach the management network; full cleanup."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.drivers.base import (
    AgentCredentials,
    AmphoraSpec,
    ComputeInfo,
    DriverError,
    SubnetInfo,
    SubnetPlug,
)
from lbaas.drivers.local import names
from lbaas.drivers.local.compute import DEFAULT_AGENT_ARGV, LocalCompute
from lbaas.drivers.local.network import LocalNetwork
from lbaas.main.backend import create_backend_netns, remove_backend_netns

# Stands in for lbaas.agent: any HTTP listener on the management address will do here (not
# http.server: its reverse DNS lookup of the address hangs in a namespace without DNS).
FAKE_AGENT = [sys.executable, "-m", "lbaas.demo.backend_server", "--address", "{mgmt_ip}",
              "--port", "{port}"]
CREDS = AgentCredentials(ca_pem="CA\n", cert_pem="CERT\n", key_pem="KEY\n")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Env:
    def __init__(self, dp: Any, tmp: Path) -> None:
        self.dp = dp
        self.mgmt = dp.make_subnet(management=True)
        self.vip, self.member = (dp.make_subnet() for _ in range(2))
        self.network = LocalNetwork(tmp / "net")
        self.compute = LocalCompute(Path(tempfile.mkdtemp(prefix="lbdp")), self.network,
                                    agent_argv=FAKE_AGENT)  # short: HAProxy socket path limit
        self.amphora_id = str(uuid.uuid4())
        self.ns = names.amphora_netns(self.amphora_id)
        self.data_ns = names.amphora_data_netns(self.amphora_id)
        self.backends: list[str] = []
        self.extra_ns: list[str] = []
        self.before = dp.host_state()

    def spec(self, role: str = "STANDALONE") -> AmphoraSpec:
        return AmphoraSpec(
            amphora_id=self.amphora_id, load_balancer_id=str(uuid.uuid4()), role=role,
            vrrp_priority=None, vip_address=self.dp.host(self.vip, 100),
            vip_subnet_id=self.vip.subnet_id, vip_network_id=self.vip.network_id,
            mgmt=SubnetPlug(self.mgmt, self.dp.host(self.mgmt, 10)),
            vip=SubnetPlug(self.vip, self.dp.host(self.vip, 11)), credentials=CREDS)

    @property
    def subnets(self) -> list[SubnetInfo]:
        return [self.mgmt, self.vip, self.member]

    def our_names(self) -> set[str]:
        legs = [names.MGMT_LEG, names.VIP_LEG, names.member_leg(self.member.subnet_id)]
        spaces = [self.ns, *self.extra_ns]
        spaces += [names.data_netns_of(ns) for ns in spaces]
        return (set(spaces) | {names.host_leg(ns, leg) for ns in spaces for leg in legs}
                | {names.bridge_name(s.network_id) for s in self.subnets}
                | {names.backend_netns(a) for a in self.backends}
                | {names.backend_host_leg(a) for a in self.backends})

    def cleanup(self) -> None:
        for address in self.backends:
            run(remove_backend_netns(address))
        for ns in [self.ns, *self.extra_ns]:
            run(self.compute.delete_amphora(ns))
        for subnet in self.subnets:
            run(self.network.remove_subnet(subnet))
        shutil.rmtree(self.compute.base_dir, ignore_errors=True)


@pytest.fixture
def env(dp: Any, tmp_path: Path) -> Iterator[Env]:
    e = Env(dp, tmp_path)
    yield e
    e.cleanup()
    dp.assert_no_leftovers(e.before, e.our_names(), [s.cidr for s in e.subnets])


def addrs(dp: Any, ns: str, dev: str) -> str:
    return dp.sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", dev)


def test_amphora_gets_legs_and_is_reachable(env: Env, dp: Any) -> None:
    before_amps = run(env.compute.list_amphorae())
    info = run(env.compute.create_amphora(env.spec()))
    mgmt_ip = dp.host(env.mgmt, 10)
    assert info == ComputeInfo(compute_id=env.ns, lb_network_ip=mgmt_ip)
    assert run(env.compute.list_amphorae()) == sorted({*before_amps, env.ns})
    # The host reaches the agent's port on the management address through the bridge.
    assert dp.fetch_in_netns(None, f"http://{mgmt_ip}:9443/").startswith("200 ")
    home = env.compute.amphora_dir(env.amphora_id)
    assert (home / "tls" / "key.pem").read_text() == "KEY\n"
    assert (home / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
    agent_pid = (home / "agent.pid").read_text()
    # Idempotent: a retry finds the running agent instead of starting another.
    assert run(env.compute.create_amphora(env.spec())) == info
    assert (home / "agent.pid").read_text() == agent_pid

    plug = run(env.network.plug_vip(env.spec(), info))
    vrrp_ip, vip = dp.host(env.vip, 11), dp.host(env.vip, 100)
    assert (plug.vrrp_ip, plug.ha_ip, plug.vrrp_interface) == (vrrp_ip, vip, "eth1")
    assert f"{vrrp_ip}/24" in addrs(dp, env.data_ns, "eth1") \
        and f"{vip}/24" in addrs(dp, env.data_ns, "eth1")
    assert f"default via {env.vip.gateway_ip} dev eth1" in dp.sh("ip", "-n", env.data_ns,
                                                                   "route")
    # Two namespaces: the management leg alone with the agent, the VIP leg in the data one.
    assert "eth1" not in dp.sh("ip", "-n", env.ns, "-o", "link")
    assert "eth0" not in dp.sh("ip", "-n", env.data_ns, "-o", "link")
    assert f"prohibit {env.mgmt.cidr}" in dp.sh("ip", "-n", env.data_ns, "route")
    # ... so the agent's address cannot be reached from where HAProxy runs, though the data
    # namespace's default route leads to this host, which holds the management gateway.
    assert dp.fetch_in_netns(env.data_ns, f"http://{mgmt_ip}:9443/", 1.0).startswith("ERR")
    assert dp.fetch_in_netns(env.data_ns, f"http://{env.mgmt.gateway_ip}:9/", 1.0).startswith(
        "ERR")
    vip_bridge = names.bridge_name(env.vip.network_id)
    assert f"link/ether {names.bridge_mac(env.vip.network_id)}" in dp.sh(
        "ip", "-o", "link", "show", "dev", vip_bridge)
    # A listener on the VIP inside the amphora answers the host.
    listener = subprocess.Popen(["ip", "netns", "exec", env.data_ns, sys.executable, "-m",
                                 "lbaas.demo.backend_server", "--address", vip, "--port", "8080"],
                                stdout=subprocess.DEVNULL)
    try:
        assert dp.until(lambda: dp.fetch_in_netns(None, f"http://{vip}:8080/").startswith(
            "200 ")), "VIP not reachable from the host"

        # Member leg, and a backend in its own namespace on the member subnet.
        member_ip, backend_ip = dp.host(env.member, 20), dp.host(env.member, 30)
        run(env.network.plug_subnets(info, [SubnetPlug(env.member, member_ip)]))
        run(env.network.plug_subnets(info, [SubnetPlug(env.member, member_ip),  # idempotent
                                            SubnetPlug(env.vip, dp.host(env.vip, 12))]))
        leg = names.member_leg(env.member.subnet_id)
        assert f"{member_ip}/24" in addrs(dp, env.data_ns, leg)
        # Members on the VIP subnet use the VIP leg, as in Octavia: no second leg there.
        assert names.member_leg(env.vip.subnet_id) not in dp.sh("ip", "-n", env.data_ns, "-o",
                                                                "link")
        env.backends.append(backend_ip)
        bns = run(create_backend_netns(env.network, env.member, backend_ip))
        server = subprocess.Popen(["ip", "netns", "exec", bns, sys.executable, "-m",
                                   "lbaas.demo.backend_server", "--address", backend_ip,
                                   "--port", "8080"], stdout=subprocess.DEVNULL)
        try:
            url = f"http://{backend_ip}:8080/"
            assert dp.until(lambda: dp.fetch_in_netns(env.data_ns, url).startswith("200 "))
            assert dp.fetch_in_netns(env.data_ns, url).startswith(f"200 backend {backend_ip}\n")
            assert dp.fetch_in_netns(env.ns, url, 1.0).startswith("ERR")  # not from the agent's
            # Plugging no member subnets removes the leg: the backend is out of reach.
            run(env.network.plug_subnets(info, []))
            assert leg not in dp.sh("ip", "-n", env.data_ns, "-o", "link")
            assert names.host_leg(env.data_ns, leg) not in dp.sh("ip", "-o", "link")
            if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0":
                # (a forwarding host would route it from the VIP subnet, like a Neutron router)
                assert dp.fetch_in_netns(env.data_ns, url, 1.0).startswith("ERR")
        finally:
            server.terminate()
            server.wait(5)

        run(env.network.unplug_vip(env.spec(), plug))
        assert "eth1" not in dp.sh("ip", "-n", env.data_ns, "-o", "link")
        assert dp.fetch_in_netns(None, f"http://{vip}:8080/", 1.0).startswith("ERR")
    finally:
        # delete_amphora must end every process in the namespace, the listener included.
        run(env.compute.delete_amphora(env.ns))
        assert listener.wait(5) is not None
    assert env.ns not in dp.sh("ip", "netns", "list")
    assert env.data_ns not in dp.sh("ip", "netns", "list")
    assert not home.exists()
    assert env.ns not in run(env.compute.list_amphorae())


def test_master_and_backup_leave_the_vip_to_keepalived(env: Env, dp: Any) -> None:
    info = run(env.compute.create_amphora(env.spec("MASTER")))
    plug = run(env.network.plug_vip(env.spec("MASTER"), info))
    assert (plug.vrrp_ip, plug.ha_ip) == (dp.host(env.vip, 11), dp.host(env.vip, 100))
    on_leg = addrs(dp, env.data_ns, "eth1")
    assert f"{dp.host(env.vip, 11)}/24" in on_leg and dp.host(env.vip, 100) not in on_leg
    # A retry leaves the VIP alone once keepalived has added it.
    dp.sh("ip", "-n", env.data_ns, "addr", "add", f"{dp.host(env.vip, 100)}/32", "dev", "eth1")
    run(env.network.plug_vip(env.spec("MASTER"), info))
    assert dp.host(env.vip, 100) in addrs(dp, env.data_ns, "eth1")
    for ns in (env.ns, env.data_ns):  # (HAProxy binds the VIP before keepalived adds it)
        assert dp.sh("ip", "netns", "exec", ns, "sysctl", "-n",
                     "net.ipv4.ip_nonlocal_bind").strip() == "1"


def test_two_amphorae_built_concurrently_see_each_other(env: Env, dp: Any) -> None:
    second_id = str(uuid.uuid4())
    second_ns = names.amphora_netns(second_id)
    env.extra_ns.append(second_ns)
    spec_b = AmphoraSpec(**{**env.spec("BACKUP").__dict__, "amphora_id": second_id,
                            "mgmt": SubnetPlug(env.mgmt, dp.host(env.mgmt, 12)),
                            "vip": SubnetPlug(env.vip, dp.host(env.vip, 13))})

    async def build(spec: AmphoraSpec) -> ComputeInfo:
        info = await env.compute.create_amphora(spec)
        await env.network.plug_vip(spec, info)
        return info

    async def both() -> list[ComputeInfo]:
        return list(await asyncio.gather(build(env.spec("MASTER")), build(spec_b)))

    try:
        a, b = run(both())
        for info in (a, b):
            assert dp.fetch_in_netns(None, f"http://{info.lb_network_ip}:9443/").startswith(
                "200 ")
        # The VRRP addresses see each other across the VIP bridge (keepalived needs that).
        assert dp.fetch_in_netns(a.compute_id, f"http://{dp.host(env.mgmt, 12)}:9443/"
                                 ).startswith("200 ")
        probe = dp.sh("ip", "netns", "exec", names.data_netns_of(a.compute_id), sys.executable,
                      "-c",
                      "import socket; s = socket.socket(); s.settimeout(2); "
                      f"print(s.connect_ex(('{dp.host(env.vip, 13)}', 1)))")
        assert probe.strip() == "111"  # ECONNREFUSED: B's kernel answered on the VIP leg
    finally:
        run(env.compute.delete_amphora(second_ns))
    assert second_ns not in dp.sh("ip", "netns", "list")
    assert names.host_leg(names.data_netns_of(second_ns), "eth1") not in dp.sh("ip", "-o", "link")


def test_ipv6_vip_subnet(env: Env, dp: Any) -> None:
    env.vip = dp.make_subnet6()
    run(env.network.ensure_subnet(env.vip))
    run(env.network.ensure_subnet(env.vip))  # idempotent with IPv6's unreachable route too
    info = run(env.compute.create_amphora(env.spec()))
    plug = run(env.network.plug_vip(env.spec(), info))
    vip = dp.host(env.vip, 100)
    assert (plug.vrrp_ip, plug.ha_ip) == (dp.host(env.vip, 11), vip)
    assert f"default via {env.vip.gateway_ip} dev eth1" in dp.sh("ip", "-6", "-n", env.data_ns,
                                                                   "route")
    probe = dp.sh(sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET6); "
                  f"s.settimeout(3); print(s.connect_ex(('{vip}', 1)))")
    assert probe.strip() == "111"  # refused by the amphora's kernel: the VIP is reachable


def test_real_agent_answers_over_mutual_tls(env: Env, dp: Any, tmp_path: Path) -> None:
    ca_mod = pytest.importorskip("lbaas.certs.ca")
    client_mod = pytest.importorskip("lbaas.drivers.agent_client")
    ca = ca_mod.CertificateAuthority.load_or_create(tmp_path / "ca")
    client = ca.ensure_client_files("controller", tmp_path / "client")
    cert, key = ca.issue_server(env.amphora_id, dp.host(env.mgmt, 10))
    spec = AmphoraSpec(**{**env.spec().__dict__,
                          "credentials": AgentCredentials(ca.ca_pem, cert, key)})
    env.compute.agent_argv = DEFAULT_AGENT_ARGV  # the real lbaas.agent

    async def scenario() -> Any:
        driver = client_mod.AgentAmphoraDriver(str(client.ca_file), str(client.cert_file),
                                               str(client.key_file))
        try:
            return await driver.info(await env.compute.create_amphora(spec))
        finally:
            await driver.aclose()

    assert run(scenario())["amphora_id"] == env.amphora_id


def test_base_dir_too_long_for_haproxy_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too long"):
        LocalCompute(tmp_path / ("d" * 60), LocalNetwork(tmp_path / "net"))


def test_agent_that_never_listens_is_reported(env: Env, dp: Any) -> None:
    env.compute.agent_argv = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    started = time.monotonic()
    with pytest.raises(DriverError, match="boom"):
        run(env.compute.create_amphora(env.spec()))
    assert time.monotonic() - started < 5  # an exited agent is reported at once
    # A failed create leaves nothing the controller would have to find.
    assert env.ns not in dp.sh("ip", "netns", "list")
    assert env.data_ns not in dp.sh("ip", "netns", "list")
    assert names.host_leg(env.ns, "eth0") not in dp.sh("ip", "-o", "link")
    assert not env.compute.amphora_dir(env.amphora_id).exists()


def test_subnet_routes_and_overlap(env: Env, dp: Any) -> None:
    run(env.network.ensure_subnet(env.member))
    run(env.network.ensure_subnet(env.member))
    bridge = names.bridge_name(env.member.network_id)
    assert f"{env.member.gateway_ip}/24" in dp.sh("ip", "-o", "addr", "show", "dev", bridge)
    assert "unreachable " + env.member.cidr + " metric 4000" in dp.sh("ip", "route")
    # The gateway's MAC stays put when legs join (a bridge would take its lowest port MAC).
    mac = names.bridge_mac(env.member.network_id)
    assert f"link/ether {mac}" in dp.sh("ip", "-o", "link", "show", "dev", bridge)
    # Without its bridge the subnet's traffic is refused, not sent out of the machine.
    dp.sh("ip", "link", "del", bridge)
    probe = subprocess.run(["ip", "route", "get", dp.host(env.member, 50)], capture_output=True,
                           text=True)
    assert probe.returncode != 0 and "No route to host" in probe.stderr, probe.stdout
    run(env.network.ensure_subnet(env.member))  # repairs it
    assert bridge in dp.sh("ip", "-o", "link")
    # Another network cannot take a CIDR the host already routes elsewhere.
    clash = SubnetInfo(network_id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()),
                       cidr=env.member.cidr.replace(".0/24", ".128/25"), gateway_ip=None,
                       host_access=True)
    with pytest.raises(DriverError, match="overlaps"):
        run(env.network.ensure_subnet(clash))
    assert names.bridge_name(clash.network_id) not in dp.sh("ip", "-o", "link")
    run(env.network.remove_subnet(env.member))
    assert bridge not in dp.sh("ip", "-o", "link")
    assert env.member.cidr not in dp.sh("ip", "route")



def test_subnet_the_host_already_uses_becomes_an_isolated_bridge(env: Env, dp: Any) -> None:
    # This machine's uplink is 192.0.2.0/24, the range of the default "private" network: the
    # bridge must then carry no host address or route, or the host would lose its uplink.
    uplink = "tdum" + uuid.uuid4().hex[:8]
    dp.sh("ip", "link", "add", uplink, "type", "veth", "peer", "name", uplink + "p")
    try:
        dp.sh("ip", "addr", "add", f"{dp.host(env.member, 1)}/24", "dev", uplink)
        dp.sh("ip", "link", "set", uplink, "up")
        run(env.network.ensure_subnet(env.member))
        bridge = names.bridge_name(env.member.network_id)
        assert bridge in dp.sh("ip", "-o", "link")
        assert "inet " not in dp.sh("ip", "-o", "addr", "show", "dev", bridge)
        routes = dp.sh("ip", "route")
        assert f"dev {bridge}" not in routes and f"unreachable {env.member.cidr}" not in routes
        assert f"{env.member.cidr} dev {uplink}" in routes  # the host keeps its own network
        # amphorae and backends still get legs on it
        info = run(env.compute.create_amphora(env.spec()))
        run(env.network.plug_subnets(info, [SubnetPlug(env.member, dp.host(env.member, 20))]))
        assert dp.host(env.member, 20) in addrs(dp, env.data_ns, names.member_leg(
            env.member.subnet_id))
    finally:
        dp.sh("ip", "link", "del", uplink, check=False)
        run(env.network.remove_subnet(env.member))
