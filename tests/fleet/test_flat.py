"""``lab-public`` as a flat provider network (``lbaas lab up --flat-public``, decision 0117), the
refusals that keep lbaas off an interface the host uses, and ``lab down`` after the controller
died mid-build (root, haproxy, keepalived; ``make test-fleet``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fleet_lab import FleetLab, get, sh, until

from lbaas.drivers.local import names
from lbaas.drivers.local.overlay import vni_for
from lbaas.store import seed

PUBLIC = seed.network_id("lab-public")
PRIVATE = seed.network_id("lab-private")
BACKEND = "10.213.10.202"
_CLIENT = ("import socket; s = socket.create_connection(('{vip}', 80), timeout=2); "
           "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'); "
           "d = b''.join(iter(lambda: s.recv(4096), b'')); "
           "print(d.partition(b'\\r\\n\\r\\n')[2].split(b'\\n')[0].decode())")


def _vxlan_ids(ns: str) -> set[int]:
    """VNIs of the VXLAN devices in a host namespace, from ``ip -d link``."""
    found = json.loads(sh("ip", "-n", ns, "-j", "-d", "link", "show", "type", "vxlan") or "[]")
    return {int(item["linkinfo"]["info_data"]["id"]) for item in found}


def _link(ns: str | None, dev: str) -> dict:
    prefix = ["-n", ns] if ns else []
    return dict(json.loads(sh("ip", *prefix, "-j", "-d", "link", "show", "dev", dev))[0])


def test_a_vip_on_a_flat_public_network_serves_the_client(flat_lab: FleetLab) -> None:
    lab = flat_lab
    lab.backend("h2", BACKEND)
    lb = lab.load_balancer("flat", members=(BACKEND,))
    (amp,) = lab.amphorae(lb["id"])
    assert lab.host_of(amp) == "h1"
    # the client sits on the lab's external bridge, not on any lbaas bridge
    client_leg = _link(None, f"lbc{lab.tag}")
    assert client_leg["master"] == f"lbx{lab.tag}"
    seen = {lab.client("python3", "-c", _CLIENT.format(vip=lb["vip_address"])).strip()
            for _ in range(4)}
    assert seen == {f"backend {BACKEND}"}, seen
    # the controller reaches it too, through its own mapped interface
    assert get(lb["vip_address"], timeout=2) == f"backend {BACKEND}"

    public_bridge, private_bridge = names.bridge_name(PUBLIC), names.bridge_name(PRIVATE)
    for host in ("h1", "h2"):
        ns = f"lbh{lab.tag}-{host}"
        vnis = _vxlan_ids(ns)
        assert vni_for(PUBLIC) not in vnis, (host, vnis)
        assert vni_for(PRIVATE) in vnis, (host, vnis)  # the other networks keep VXLAN
        provider = _link(ns, "px0")
        if host == "h2":  # no amphora on lab-public there: its interface is untouched
            assert "master" not in provider and "UP" not in provider["flags"], provider
            continue
        assert provider["master"] == public_bridge
        # a flat network keeps its interface's MTU; the overlay's legs get 50 less
        assert _link(ns, public_bridge)["mtu"] == provider["mtu"] == 1500
        assert _link(ns, private_bridge)["mtu"] == 1450
    amp_ns = "ampd-" + amp["compute_id"].split("/")[1].removeprefix("amp-")
    assert _link(amp_ns, names.VIP_LEG)["mtu"] == 1500
    # the controller keeps its VXLAN port for lab-public (for hosts without a mapping), but
    # floods to no host: each one reaches lab-public through its interface
    vx = "vx" + public_bridge.removeprefix(names.BRIDGE_PREFIX)
    flood = {e.get("dst") for e in json.loads(sh("bridge", "-j", "fdb", "show", "dev", vx))
             if e.get("mac") == "00:00:00:00:00:00"}
    assert not flood & {h["address"] for h in lab.hosts.values()}, flood
    assert _link(None, f"lbxp{lab.tag}")["master"] == public_bridge


def test_an_interface_the_host_uses_is_refused(tmp_path: Path) -> None:
    """Addresses, routes, the default route, loopback, another master: refused; a bare
    interface (veths: this kernel has no dummy links) is plugged, and released exactly as it
    was (down, no master)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    ns = f"lbflat{os.getpid() % 100000}"
    sh("ip", "netns", "add", ns)
    try:
        for line in ("link add d0 type veth peer name p0", "addr add 10.213.77.1/24 dev d0",
                     "link set d0 up", "link add d1 type veth peer name p1", "link set d1 up",
                     "route add default dev d1", "link add d2 type veth peer name p2",
                     "link add d3 type veth peer name p3", "link add br9 type bridge",
                     "link set d3 master br9", "link add d4 type veth peer name p4",
                     "link set d4 up", "route add 10.213.78.0/24 dev d4"):
            sh("ip", "-n", ns, *line.split())
        script = textwrap.dedent(f"""
            import asyncio, json, sys
            from pathlib import Path
            from lbaas.drivers.local import names
            from lbaas.drivers.local.provider import ProviderPorts, refusal
            async def main():
                nid = {PUBLIC!r}
                bridge = names.bridge_name(nid)
                out = {{dev: await refusal(dev, bridge)
                       for dev in ("d0", "d1", "d2", "d3", "d4", "lo", "nope")}}
                import subprocess
                subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
                ports = ProviderPorts(Path(sys.argv[1]), {{nid: "d2"}})
                out["mtu"] = await ports.plug(nid)
                out["plugged"] = json.loads(subprocess.run(
                    ["ip", "-j", "link", "show", "dev", "d2"], capture_output=True,
                    text=True).stdout)[0]
                subprocess.run(["ip", "link", "del", bridge], check=True)
                out["released"] = await ports.release()
                out["after"] = json.loads(subprocess.run(
                    ["ip", "-j", "link", "show", "dev", "d2"], capture_output=True,
                    text=True).stdout)[0]
                print(json.dumps(out))
            asyncio.run(main())
        """)
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script,
                               str(tmp_path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
    finally:
        sh("ip", "netns", "delete", ns)
    assert "holds address 10.213.77.1" in out["d0"]
    assert "default route" in out["d1"]
    assert out["d2"] is None
    assert "already a port of br9" in out["d3"]
    assert "route 10.213.78.0/24" in out["d4"]
    assert out["lo"] and "no interface" in out["nope"]
    assert out["mtu"] == 1500
    assert out["plugged"]["master"] == names.bridge_name(PUBLIC)
    assert "UP" in out["plugged"]["flags"]
    assert out["released"] == ["provider interface d2"]
    assert "master" not in out["after"] and "UP" not in out["after"]["flags"]


def test_the_machines_own_interfaces_are_refused() -> None:
    """eth0 (even down and bare, as on some machines) and whatever carries the default route
    are never plugged."""
    import asyncio

    from lbaas.drivers.local.provider import refusal

    if os.geteuid() != 0:
        pytest.skip("needs root")
    route = json.loads(sh("ip", "-j", "route", "show", "default") or "[]")
    devs = {str(r["dev"]) for r in route if r.get("dev")} | {"eth0", "lo"}
    for dev in devs:
        if Path(f"/sys/class/net/{dev}").exists():
            assert asyncio.run(refusal(dev, names.bridge_name(PUBLIC))) is not None, dev


def _lab_processes(lab: FleetLab) -> dict[int, str]:
    """Pid -> command of every process in the lab's namespaces or naming its directory."""
    found: dict[int, str] = {}
    spaces = [n for n in lab._netns() if lab.tag in n or lab._is_ours(n)]
    for ns in spaces:
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            found[int(pid)] = ns
    for pid in sh("pgrep", "-f", str(lab.data), check=False).split():
        found.setdefault(int(pid), "cmdline")
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("controller", ["killed", "still running"])
def test_lab_down_while_a_pair_is_being_built(lab: FleetLab, controller: str) -> None:
    """``lab down`` while the hosts build an ACTIVE_STANDBY pair beside a serving load
    balancer, its controller killed (SIGKILL, as a crash) or still running (an operator who
    forgot it; it then fails amphorae over onto the hosts not yet down): no namespace, link or
    process of the lab is left, by the pids and names recorded before."""
    lab.backend("h2", BACKEND)
    lab.load_balancer("serving", members=(BACKEND,))
    flavor = lab.flavor("ACTIVE_STANDBY")
    body = {"name": "building", "vip_subnet_id": lab.subnet_id("lab-public"),
            "flavor_id": flavor}
    lb = lab.api("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": body})["loadbalancer"]
    assert until(lambda: len(lab.amphorae(lb["id"])) >= 1, 10)
    time.sleep(0.3)  # the host-agents are building
    assert lab.serve is not None
    if controller == "killed":
        lab.serve.send_signal(signal.SIGKILL)
        lab.serve.wait(5)
    before = _lab_processes(lab)
    before.pop(lab.serve.pid, None)  # (the controller is not the lab's)
    assert any(ns.startswith(("amp-", "ampd-")) for ns in before.values()), before
    lab.lbaas("lab", "down", "--data-dir", str(lab.data))
    survivors = {pid: (ns, _command(pid)) for pid, ns in before.items() if _alive(pid)}
    assert not survivors, survivors
    hosts = str(lab.data / "lab" / "hosts")
    assert not sh("pgrep", "-af", hosts, check=False).strip()
    assert not [n for n in lab._netns() if lab.tag in n or lab._is_ours(n)]
    if controller == "killed":
        assert lab.leftovers() == []
