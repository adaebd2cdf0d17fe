"""The host is never harmed, and a bridge belongs to one instance (issue 11 items 1 and 2).

Against the real kernel with random test subnets; "addresses the host uses" come through the
``HostUse`` seam (temporary resolv.conf/hosts files, a crafted /proc/net/tcp), never by editing
the real files. The parsers are checked first without root.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from lbaas.drivers.local import names, ownership
from lbaas.drivers.local.host_use import HostUse, established, hosts_entries, nameservers
from lbaas.drivers.local.network import LocalNetwork


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# parsers (no root) -------------------------------------------------------------------------------
def test_resolv_conf_and_hosts_are_read() -> None:
    assert nameservers("# x\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\n"
                       "search example\nnameserver bogus\n") == ["10.255.255.53", "fe80::1%eth0"]
    assert hosts_entries("127.0.0.1 localhost\n203.0.113.80 pypi.org files.pythonhosted.org\n"
                         "# 1.2.3.4 commented\nbad line here\n") == [
        ("127.0.0.1", "localhost"), ("203.0.113.80", "pypi.org")]


PROC_TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    # 192.0.2.2:40000 -> 203.0.113.80:443 established
    "   0: 020200C0:9C40 507100CB:01BB 01 00000000:00000000 00:00000000 00000000 0\n"
    # listening socket: not a use
    "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n"
    # 10.9.9.1 -> 10.9.9.20 established (the host's own traffic over an lbaas bridge)
    "   2: 0109090A:9C41 1409090A:24E3 01 00000000:00000000 00:00000000 00000000 0\n")


def test_established_connections_are_read(tmp_path: Path) -> None:
    pairs = [(str(a), str(b)) for a, b in established(PROC_TCP)]
    assert pairs == [("192.0.2.2", "203.0.113.80"), ("10.9.9.1", "10.9.9.20")]
    (tmp_path / "tcp").write_text(PROC_TCP)
    use = HostUse(resolv_conf=tmp_path / "none", hosts_file=tmp_path / "none",
                  proc_net=tmp_path)
    why = use.conflict("203.0.113.0/24")
    assert why is not None and "203.0.113.80" in why and "established connection" in why
    assert use.conflict("10.9.9.0/24") is not None
    # ... unless its local end is one of the host's addresses on an lbaas bridge
    assert use.conflict("10.9.9.0/24", frozenset({"10.9.9.1"})) is None
    assert HostUse(resolv_conf=tmp_path / "none", hosts_file=tmp_path / "none",
                   proc_net=tmp_path, extra=("172.24.4.0/28",)).conflict("172.24.4.0/24")


# kernel (root) -----------------------------------------------------------------------------------
def route_get(address: str) -> str:
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True)
    return (out.stdout + out.stderr).split(" uid ")[0].strip()


@pytest.fixture
def made(dp: Any, tmp_path: Path) -> Any:
    """Subnets and networks a test makes; everything is removed (and checked) afterwards."""
    before = dp.host_state()
    state: dict[str, list[Any]] = {"subnets": [], "networks": []}
    yield state
    for network in state["networks"]:
        for subnet in state["subnets"]:
            run(network.remove_subnet(subnet))
    for subnet in state["subnets"]:  # whatever a refused or foreign network left
        subprocess.run(["ip", "link", "del", names.bridge_name(subnet.network_id)],
                       capture_output=True)
        subprocess.run(["ip", "route", "del", "unreachable", subnet.cidr, "metric", "4000"],
                       capture_output=True)
    dp.assert_no_leftovers(before, {names.bridge_name(s.network_id) for s in state["subnets"]},
                           [s.cidr for s in state["subnets"]])


def files(tmp_path: Path, resolv: str = "", hosts: str = "") -> HostUse:
    (tmp_path / "resolv.conf").write_text(resolv)
    (tmp_path / "hosts").write_text(hosts)
    return HostUse(resolv_conf=tmp_path / "resolv.conf", hosts_file=tmp_path / "hosts",
                   proc_net=tmp_path / "no-proc")


def has_host_address(dp: Any, subnet: Any) -> bool:
    return "inet " in dp.sh("ip", "-o", "addr", "show", "dev",
                            names.bridge_name(subnet.network_id))


def test_an_address_the_host_uses_keeps_its_subnet_off_the_host(
        dp: Any, made: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    used, free = dp.make_subnet(), dp.make_subnet()
    made["subnets"] += [used, free]
    registry = dp.host(used, 80)  # as the package registries were in the old public range
    before = route_get(registry)
    network = LocalNetwork(tmp_path / "net", files(
        tmp_path, resolv="nameserver 127.0.0.53\n",
        hosts=f"{registry} registry.example\n"))
    made["networks"].append(network)
    with caplog.at_level(logging.WARNING, logger="lbaas.drivers.local.network"):
        run(network.ensure_subnet(used))
        run(network.ensure_subnet(used))
    run(network.ensure_subnet(free))
    assert names.bridge_name(used.network_id) in dp.sh("ip", "-o", "link")
    assert not has_host_address(dp, used) and has_host_address(dp, free)
    assert route_get(registry) == before  # the host still sends it where it did
    assert f"dev {names.bridge_name(used.network_id)}" not in route_get(registry)
    assert names.bridge_name(free.network_id) in route_get(dp.host(free, 80))
    lines = [r.getMessage() for r in caplog.records if "isolated" in r.getMessage()]
    assert len(lines) == 1 and registry in lines[0] and "registry.example" in lines[0], lines


def test_a_nameserver_or_an_operator_listed_range_counts_too(dp: Any, made: Any,
                                                              tmp_path: Path) -> None:
    dns, listed = dp.make_subnet(), dp.make_subnet()
    made["subnets"] += [dns, listed]
    use = files(tmp_path, resolv=f"nameserver {dp.host(dns, 53)}\n")
    network = LocalNetwork(tmp_path / "net", HostUse(
        resolv_conf=use.resolv_conf, hosts_file=use.hosts_file, proc_net=use.proc_net,
        extra=(listed.cidr.replace(".0/24", ".128/25"),)))
    made["networks"].append(network)
    run(network.ensure_subnet(dns))
    run(network.ensure_subnet(listed))
    assert not has_host_address(dp, dns) and not has_host_address(dp, listed)
    assert f"unreachable {dns.cidr}" not in dp.sh("ip", "route")


def test_host_access_off_isolates_every_bridge(dp: Any, made: Any, tmp_path: Path) -> None:
    subnet = dp.make_subnet()
    made["subnets"].append(subnet)
    on = LocalNetwork(tmp_path / "net", files(tmp_path))
    made["networks"].append(on)
    run(on.ensure_subnet(subnet))
    assert has_host_address(dp, subnet)
    # a restart with host access off takes the address and the route back
    off = LocalNetwork(tmp_path / "net", files(tmp_path), host_access=False)
    run(off.ensure_subnet(subnet))
    assert not has_host_address(dp, subnet)
    assert subnet.cidr not in dp.sh("ip", "route")


def test_a_bridge_belongs_to_one_instance(dp: Any, made: Any, tmp_path: Path) -> None:
    subnet = dp.make_subnet()
    made["subnets"].append(subnet)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = LocalNetwork(first_dir / "network", files(tmp_path))
    second = LocalNetwork(second_dir / "network", files(tmp_path))
    made["networks"] += [first, second]
    run(first.ensure_subnet(subnet))
    bridge = names.bridge_name(subnet.network_id)
    assert ownership.read_mark(bridge) == f"lbaas owner={first_dir.resolve()}"
    with pytest.raises(ownership.BridgeOwnedElsewhere) as refused:
        run(second.ensure_subnet(subnet))
    text = str(refused.value)
    assert str(first_dir.resolve()) in text and "networking.networks" in text
    assert "lbaas teardown" in text
    # the same CIDR on another operator network collides with the first one's bridge, named
    # too (a project's network would not: it is never attached to the host)
    clash = type(subnet)(network_id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()),
                         cidr=subnet.cidr, gateway_ip=subnet.gateway_ip, host_access=True)
    made["subnets"].append(clash)
    with pytest.raises(ownership.BridgeOwnedElsewhere, match=str(first_dir.resolve())):
        run(second.ensure_subnet(clash))
    # the second one's removal leaves the first one's bridge, address and route alone
    run(second.remove_subnet(subnet))
    assert has_host_address(dp, subnet) and f"unreachable {subnet.cidr}" in dp.sh("ip", "route")
    # an owner whose data directory is gone is stale: its bridge is taken over
    shutil.rmtree(first_dir)
    run(second.ensure_subnet(subnet))
    assert ownership.read_mark(bridge) == f"lbaas owner={second_dir.resolve()}"
    run(second.remove_subnet(subnet))
    assert bridge not in dp.sh("ip", "-o", "link")


def test_teardown_removes_its_marked_bridges_even_without_state(dp: Any, made: Any,
                                                                tmp_path: Path) -> None:
    from lbaas.main.local_plane import local_network, teardown_local_plane
    from lbaas.settings import Settings

    mine, theirs = dp.make_subnet(), dp.make_subnet()
    made["subnets"] += [mine, theirs]
    (tmp_path / "other").mkdir()
    other = LocalNetwork(tmp_path / "other" / "network", files(tmp_path))
    made["networks"].append(other)
    run(other.ensure_subnet(theirs))
    short = Path(tempfile.mkdtemp(prefix="lbh"))  # HAProxy's socket path limit
    settings = Settings(data_dir=short / "data")
    try:
        run(local_network(settings).ensure_subnet(mine))
        shutil.rmtree(short / "data" / "network")  # its records are gone, its mark is not
        removed = run(teardown_local_plane(settings))
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert names.bridge_name(mine.network_id) in removed
    links = dp.sh("ip", "-o", "link")
    assert names.bridge_name(mine.network_id) not in links
    assert f"unreachable {mine.cidr}" not in dp.sh("ip", "route")
    assert names.bridge_name(theirs.network_id) in links  # another instance's: left alone


def test_project_bridges_stay_off_the_host_and_every_bridge_is_guarded(
        dp: Any, made: Any, tmp_path: Path) -> None:
    """A project's network (host_access False) gets no host address or route, even on a range
    another bridge uses; the host guard table lists every bridge (the management one in its own
    set) and goes with the last subnet."""
    from dataclasses import replace

    from lbaas.drivers.local import host_guard

    mgmt, operator = dp.make_subnet(management=True), dp.make_subnet()
    tenant = replace(dp.make_subnet(), host_access=False)
    same_range = replace(tenant, network_id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()))
    made["subnets"] += [mgmt, operator, tenant, same_range]
    network = LocalNetwork(tmp_path / "net", files(tmp_path))
    made["networks"].append(network)
    before = route_get(dp.host(tenant, 80))
    for subnet in (mgmt, operator, tenant, same_range):
        run(network.ensure_subnet(subnet))
    assert has_host_address(dp, operator) and not has_host_address(dp, tenant)
    assert not has_host_address(dp, same_range)
    assert route_get(dp.host(tenant, 80)) == before
    for subnet in (tenant, same_range):
        bridge = names.bridge_name(subnet.network_id)
        assert Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6").read_text().strip() == "1"
    listing = json.loads(dp.sh("nft", "-j", "list", "table", "inet", network.guard.table))
    sets = {i["set"]["name"]: set(i["set"].get("elem", [])) for i in listing["nftables"]
            if "set" in i}
    guarded = {names.bridge_name(s.network_id) for s in (operator, tenant, same_range)}
    assert sets["bridges"] == guarded, sets
    # the management bridge is guarded too, with the heartbeat ports as its only opening
    # (none here: this LocalNetwork was given none)
    assert sets["management"] == {names.bridge_name(mgmt.network_id)}, sets
    assert sets["heartbeat_ports"] == set(), sets
    for subnet in (mgmt, operator, tenant, same_range):
        run(network.remove_subnet(subnet))
    assert f"table inet {network.guard.table}" not in dp.sh("nft", "list", "tables")
    assert network.guard.table == host_guard.table_name(network.mark)
