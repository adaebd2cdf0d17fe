"""ACTIVE_STANDBY end to end (root, haproxy, keepalived): a real ``lbaas serve`` with
``loadbalancer_topology = "ACTIVE_STANDBY"`` builds two amphorae running keepalived (VRRPv3,
0.1 s adverts); killing every process of the MASTER amphora moves the VIP to the other one
within a second, measured by a client that sends a request through the VIP every 50 ms.

The server runs on its own networks (random 10.241-243.x.0/24 with unique names, so its bridges
are not the shared default ones) and everything is removed by ``lbaas teardown``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.drivers.local import names
from lbaas.store import seed

BIN = Path(sys.executable).parent
PROBE_PERIOD = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    """A running ``lbaas serve`` on private networks, its demo backends and its data dir."""

    def __init__(self, dp: Any, heartbeat_timeout: float) -> None:
        self.dp = dp
        tag = f"as{os.getpid() % 1000}{random.randint(0, 999)}"
        blocks = random.sample(range(256), 3)
        self.cidr = {kind: f"10.{241 + i}.{blocks[i]}" for i, kind in
                     enumerate(("pub", "priv", "mgmt"))}
        self.net = {kind: f"{tag}-{kind}" for kind in self.cidr}
        # short: HAProxy's unix socket paths under data/amphorae/<ns>/agent/run are limited
        self.root = Path(tempfile.mkdtemp(prefix="lbas"))
        self.data = self.root / "d"
        self.config = self.root / "lbaas.toml"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        networks = ", ".join(
            f"{{name = '{self.net[k]}', subnet_name = '{self.net[k]}-subnet', "
            f"cidr = '{p}.0/24', gateway_ip = '{p}.1', allocation_start = '{p}.10', "
            f"allocation_end = '{p}.200'}}" for k, p in self.cidr.items())
        self.config.write_text(
            f"[controller]\nloadbalancer_topology = \"ACTIVE_STANDBY\"\n"
            f"[health]\nheartbeat_interval = 0.5\nheartbeat_timeout = {heartbeat_timeout}\n"
            f"[networking]\nmanagement_network = '{self.net['mgmt']}'\n"
            f"networks = [{networks}]\n")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.backends = [f"{self.cidr['priv']}.{n}" for n in (20, 21)]
        self.before = dp.host_state()

    def subnet_id(self, kind: str) -> str:
        return seed.subnet_id(f"{self.net[kind]}-subnet")

    def start(self) -> None:
        log = open(self.root / "serve.log", "ab")
        self.procs.append(subprocess.Popen(
            [str(BIN / "lbaas"), "serve", "--config", str(self.config), "--data-dir",
             str(self.data), "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT))
        log.close()
        assert self.dp.until(self._up, 30), self.log()
        for address in self.backends:
            proc = subprocess.Popen(
                [str(BIN / "lbaas"), "backend", "--config", str(self.config), "--data-dir",
                 str(self.data), "--subnet", f"{self.net['priv']}-subnet", "--address", address,
                 "--port", "80"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(proc)
        for address in self.backends:
            assert self.dp.until(lambda a=address: names.backend_netns(a) in self.dp.sh(
                "ip", "netns", "list"), 20)

    def _up(self) -> bool:
        assert self.procs[0].poll() is None, self.log()
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1):
                return True
        except OSError:
            return False

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-4000:]

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def wait_active(self, lb_id: str, timeout: float = 60) -> None:
        def active() -> bool:
            lb = self.api("GET", f"/v2/lbaas/loadbalancers/{lb_id}")["loadbalancer"]
            assert lb["provisioning_status"] != "ERROR", self.log()
            return bool(lb["provisioning_status"] == "ACTIVE")
        assert self.dp.until(active, timeout), self.log()

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        subprocess.run([str(BIN / "lbaas"), "teardown", "--config", str(self.config),
                        "--data-dir", str(self.data)], capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def site(dp: Any, request: pytest.FixtureRequest) -> Iterator[Site]:
    """A site whose health manager fails over an amphora 1.5 s after its last heartbeat
    (default 3 s), or after ``request.param`` seconds."""
    for program in ("haproxy", "keepalived"):
        if shutil.which(program) is None:
            pytest.skip(f"needs {program}")
    s = Site(dp, getattr(request, "param", 1.5))
    try:
        yield s
    finally:
        s.cleanup()
    ours = {names.bridge_name(seed.network_id(n)) for n in s.net.values()}
    dp.assert_no_leftovers(s.before, ours, [f"{p}.0/24" for p in s.cidr.values()])


class Probe(threading.Thread):
    """GET / through the VIP every 50 ms on a new connection; records (time, backend or None)."""

    def __init__(self, vip: str) -> None:
        super().__init__(daemon=True)
        self.vip = vip
        self.results: list[tuple[float, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.results.append((started, self._once()))
            self.stop.wait(max(0.0, PROBE_PERIOD - (time.monotonic() - started)))

    def _once(self) -> str | None:
        try:
            with socket.create_connection((self.vip, 80), timeout=0.2) as s:
                s.settimeout(0.3)
                s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        except OSError:
            return None
        if not data.startswith(b"HTTP/1.1 200"):
            return None
        return data.partition(b"\r\n\r\n")[2].split(b"\n", 1)[0].decode(errors="replace")

    def outage_after(self, moment: float, window: float = 2.0) -> float:
        """From the last answer before the first failed probe to the first answer after the
        last failed one (probes started from ``moment`` on, within ``window``); 0 if none."""
        failed = [t for t, r in self.results if r is None and moment <= t <= moment + window]
        if not failed:
            return 0.0
        ok = [t for t, r in self.results if r is not None]
        before = max(t for t in ok if t < failed[0])
        after = min(t for t in ok if t > failed[-1])
        return after - before


def _vip_holder(dp: Any, amps: list[dict[str, Any]], vip: str) -> list[str]:
    """The amphorae (compute ids) whose data namespace holds the VIP (on the VIP leg: every
    amphora of a pair also has it on ``lo``, scope host, which answers no ARP)."""
    return [a["compute_id"] for a in amps if f" {vip}/" in dp.sh(
        "ip", "-n", names.data_netns_of(a["compute_id"]), "-o", "-4", "addr", "show", "scope",
        "global", check=False)]


def _serving_pair(site: Site, dp: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any],
                                                Probe]:
    """An ACTIVE_STANDBY HTTP load balancer over both backends, checked through the API and the
    kernel; returns (load balancer, MASTER, BACKUP, a started probe that has seen both)."""
    site.start()
    lb = site.api("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "ha", "vip_subnet_id": site.subnet_id("pub")}})["loadbalancer"]
    site.wait_active(lb["id"])
    listener = site.api("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})["listener"]
    site.wait_active(lb["id"])
    pool = site.api("POST", "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN"}})["pool"]
    site.wait_active(lb["id"])
    for address in site.backends:
        site.api("POST", f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": address, "protocol_port": 80, "subnet_id": site.subnet_id("priv")}})
        site.wait_active(lb["id"])

    amps = site.api("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")["amphorae"]
    by_role = {a["role"]: a for a in amps}
    assert sorted(by_role) == ["BACKUP", "MASTER"]
    master, backup = by_role["MASTER"], by_role["BACKUP"]
    assert (master["vrrp_priority"], backup["vrrp_priority"]) == (100, 90)
    for amp in amps:
        assert amp["status"] == "ALLOCATED" and amp["ha_ip"] == lb["vip_address"]
        assert amp["vrrp_ip"].startswith(site.cidr["pub"] + ".")
        assert amp["vrrp_interface"] == names.VIP_LEG and amp["vrrp_id"] == 1
        assert amp["vrrp_port_id"]
    assert master["vrrp_ip"] != backup["vrrp_ip"]

    vip = lb["vip_address"]
    assert dp.until(lambda: _vip_holder(dp, amps, vip) == [master["compute_id"]], 10), \
        _vip_holder(dp, amps, vip)
    probe = Probe(vip)
    probe.start()
    assert dp.until(lambda: sum(r is not None for _, r in probe.results) >= 10, 10)
    seen = {r for _, r in probe.results if r is not None}
    assert seen == {f"backend {a}" for a in site.backends}, seen
    return lb, master, backup, probe


def _signal_all(pids: list[int], *signals: signal.Signals) -> None:
    for sig in signals:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _pids(dp: Any, ns: str, word: str | None = None) -> list[int]:
    """Processes in the amphora's two namespaces (``ns`` is the agent's; those with ``word`` in
    their command line)."""
    pids = [int(p) for space in (ns, names.data_netns_of(ns))
            for p in dp.sh("ip", "netns", "pids", space, check=False).split()]
    if word is None:
        return pids
    # (not the ``timeout`` forwarding signals to the confined agent: its command line names it)
    return [p for p in pids if word.encode() in (line := Path(f"/proc/{p}/cmdline").read_bytes())
            and b"lbaas.drivers.local.confine" not in line]


def test_vip_moves_within_a_second_when_the_master_dies(site: Site, dp: Any) -> None:
    lb, master, backup, probe = _serving_pair(site, dp)
    vip = lb["vip_address"]
    amps = [master, backup]
    try:
        killed_at = time.monotonic()
        # Frozen first, then killed: no process gets to say goodbye (keepalived would send a
        # priority 0 advert on the SIGTERM its dying parent's pdeathsig sends), like a crash.
        _signal_all(_pids(dp, master["compute_id"]), signal.SIGSTOP, signal.SIGKILL)
        time.sleep(2)
        outage = probe.outage_after(killed_at)
        print(f"\nACTIVE_STANDBY: outage after killing the MASTER amphora's processes: "
              f"{outage:.3f} s")
        assert outage <= 1.0
        assert _vip_holder(dp, amps, vip)[-1:] == [backup["compute_id"]]
        # The health manager misses the heartbeats and the controller replaces the dead
        # amphora: the survivor (holding the VIP) becomes MASTER, a new one the BACKUP.
        replaced = dp.until(lambda: _replaced(site, lb["id"], backup["id"]), 10)
        repaired = time.monotonic() - killed_at
        print(f"ACTIVE_STANDBY: new BACKUP amphora ALLOCATED {repaired:.1f} s after the kill")
        assert replaced, site.api("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")
        time.sleep(1.5)  # the survivor reloads keepalived (new peer); the VIP must stay
    finally:
        probe.stop.set()
        probe.join(5)
    last = [r for t, r in probe.results if t > killed_at + outage + 0.5]
    assert last and all(r is not None for r in last), last
    assert master["compute_id"] not in dp.sh("ip", "netns", "list")
    assert names.data_netns_of(master["compute_id"]) not in dp.sh("ip", "netns", "list")
    amps = site.api("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")["amphorae"]
    assert _vip_holder(dp, amps, vip) == [backup["compute_id"]]
    assert repaired <= 5.0


def _replaced(site: Site, lb_id: str, survivor: str) -> bool:
    amps = site.api("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")["amphorae"]
    roles = {a["role"]: a for a in amps if a["status"] == "ALLOCATED"}
    return (len(amps) == 2 and roles.get("MASTER", {}).get("id") == survivor
            and roles.get("BACKUP", {}).get("id") not in (None, survivor)
            and roles["MASTER"]["vrrp_priority"] == 100)


@pytest.mark.parametrize("site", [60.0], indirect=True)  # no failover: keepalived alone
def test_vip_moves_when_the_masters_haproxy_dies(site: Site, dp: Any) -> None:
    """HAProxy dead for good on the MASTER (its agent frozen, so nothing restarts it): the
    track script fails within its 1 s interval and the BACKUP takes the VIP."""
    lb, master, backup, probe = _serving_pair(site, dp)
    # the supervisor and its worker (which ACTIVE_STANDBY keeps: keepalived is its child)
    agent = _pids(dp, master["compute_id"], "lbaas.agent")
    assert len(agent) == 2
    try:
        _signal_all(agent, signal.SIGSTOP)
        killed_at = time.monotonic()
        _signal_all(_pids(dp, master["compute_id"], "haproxy"), signal.SIGKILL)
        time.sleep(3)
        outage = probe.outage_after(killed_at, window=3.0)
        print(f"\nACTIVE_STANDBY: outage after killing the MASTER's HAProxy: {outage:.3f} s")
        holder = _vip_holder(dp, [master, backup], lb["vip_address"])
    finally:
        probe.stop.set()
        probe.join(5)
        _signal_all(agent, signal.SIGCONT)
    assert holder == [backup["compute_id"]]
    assert outage <= 1.5
    last = [r for t, r in probe.results if t > killed_at + outage + 0.5]
    assert last and all(r is not None for r in last), last

    # Deleting the load balancer removes both amphorae.
    site.api("DELETE", f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true")
    spaces = {space for a in (master, backup)
              for space in (a["compute_id"], names.data_netns_of(a["compute_id"]))}
    assert dp.until(lambda: not set(spaces) & set(dp.sh("ip", "netns", "list").split()), 30)
