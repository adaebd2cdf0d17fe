"""The health manager for real: ``lbaas serve`` as root, amphora agents sending signed
heartbeats, demo backends, HAProxy health checks, and a failover measured through the VIP.

The site uses its own networks (random 10.24x.y.0/24 subnets with names unique to this run), so
its bridges, gateway addresses and heartbeat port never meet another server's on this host.
"""

from __future__ import annotations

import contextlib
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
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.drivers.local import names
from lbaas.store import seed
from lbaas.wire.heartbeat import wrap_amphora_envelope
from net_prefixes import network_entry, unused_prefixes

LBAAS = str(Path(sys.executable).parent / "lbaas")
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 1.5  # three missed heartbeats
PROBE_TIMEOUT = 0.25  # a request that hangs longer counts as failed (and blurs the outage)
pytestmark = pytest.mark.slow


def _skip() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bridges)"
    for tool in ("haproxy", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



class Site:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hb", dir="/tmp"))  # short: socket paths
        tag = f"hb{os.getpid() % 10000}{random.randint(0, 999)}"
        self.nets = {kind: f"{tag}-{kind}" for kind in ("pub", "priv", "mgmt")}
        self.prefix = dict(zip(self.nets, unused_prefixes(3), strict=True))
        entries = [network_entry(name, self.prefix[kind]) for kind, name in self.nets.items()]
        self.config = self.root / "lbaas.toml"
        self.config.write_text(
            f"[networking]\nmanagement_network = '{self.nets['mgmt']}'\n"
            f"networks = [{', '.join(entries)}]\n[controller]\ndrivers = 'local'\n"
            # a faster heartbeat than the defaults (1 s / 3 s): see the failover budget below
            f"[health]\nheartbeat_interval = {HEARTBEAT_INTERVAL}\n"
            f"heartbeat_timeout = {HEARTBEAT_TIMEOUT}\n")
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None

    def subnet_id(self, kind: str) -> str:
        return seed.subnet_id(f"{self.nets[kind]}-subnet")

    def bridges(self) -> set[str]:
        return {names.bridge_name(seed.network_id(n)) for n in self.nets.values()}

    def start(self) -> None:
        log = open(self.root / "serve.log", "wb")  # lives as long as the server
        self.server = subprocess.Popen(
            [LBAAS, "serve", "--config", str(self.config), "--data-dir", str(self.data),
             "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.server.poll() is None, self.log()
            try:
                with urllib.request.urlopen(self.url + "/v2", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("lbaas serve did not come up:\n" + self.log())

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-4000:]

    def backend(self, address: str) -> None:
        proc = subprocess.Popen(
            [LBAAS, "backend", "--config", str(self.config), "--data-dir", str(self.data),
             "--subnet", f"{self.nets['priv']}-subnet", "--address", address, "--port", "8080"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        assert proc.stdout is not None and b"lbaas backend:" in proc.stdout.readline()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def wait_active(self, lb_id: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, body = self.call("GET", f"/v2/lbaas/loadbalancers/{lb_id}")
            status = body["loadbalancer"]["provisioning_status"]
            if status == "ACTIVE":
                return
            assert status != "ERROR", self.log()
            time.sleep(0.2)
        raise AssertionError(f"load balancer not ACTIVE:\n{self.log()}")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(10)
        subprocess.run([LBAAS, "teardown", "--config", str(self.config), "--data-dir",
                        str(self.data)], capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def site(dp: Any) -> Iterator[Site]:
    reason = _skip()
    if reason:
        pytest.skip(reason)
    before = dp.host_state()
    s = Site()
    try:
        s.start()
        yield s
    finally:
        s.close()
    ours = s.bridges() | {names.backend_netns(f"{s.prefix['priv']}.{n}") for n in (20, 21)}
    dp.assert_no_leftovers(before, ours, [f"{p}.0/24" for p in s.prefix.values()])


def _build(site: Site) -> dict[str, Any]:
    priv = site.prefix["priv"]
    backends = [f"{priv}.20", f"{priv}.21"]
    for address in backends:
        site.backend(address)
    code, body = site.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "hb", "vip_subnet_id": site.subnet_id("pub")}})
    assert code == 201, body
    lb = body["loadbalancer"]
    ids: dict[str, Any] = {"lb": lb["id"], "vip": lb["vip_address"], "backends": backends}
    site.wait_active(lb["id"])
    code, body = site.call("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    ids["listener"] = body["listener"]["id"]
    site.wait_active(lb["id"])
    code, body = site.call("POST", "/v2/lbaas/pools", {"pool": {
        "listener_id": ids["listener"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    ids["pool"] = body["pool"]["id"]
    site.wait_active(lb["id"])
    code, body = site.call("POST", "/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": ids["pool"], "type": "HTTP", "url_path": "/healthcheck", "delay": 1,
        "timeout": 1, "max_retries": 1, "max_retries_down": 2}})
    assert code == 201, body
    ids["hm"] = body["healthmonitor"]
    site.wait_active(lb["id"])
    ids["members"] = []
    for address in backends:
        code, body = site.call("POST", f"/v2/lbaas/pools/{ids['pool']}/members", {"member": {
            "address": address, "protocol_port": 8080,
            "subnet_id": site.subnet_id("priv")}})
        assert code == 201, body
        ids["members"].append(body["member"]["id"])
        site.wait_active(lb["id"])
    return ids


def _tree(site: Site, ids: dict[str, Any]) -> dict[str, Any]:
    _, body = site.call("GET", f"/v2/lbaas/loadbalancers/{ids['lb']}/status")
    lb = body["statuses"]["loadbalancer"]
    pool = lb["listeners"][0]["pools"][0]
    members = {m["id"]: m["operating_status"] for m in pool["members"]}
    return {"lb": lb["operating_status"], "listener": lb["listeners"][0]["operating_status"],
            "pool": pool["operating_status"], "members": [members[m] for m in ids["members"]]}


def _wait_tree(site: Site, ids: dict[str, Any], want: dict[str, Any], timeout: float) -> float:
    started = time.monotonic()
    while True:
        got = _tree(site, ids)
        if got == want:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"statuses {got}, wanted {want} within {timeout} s")
        time.sleep(0.05)


def _amphora(site: Site, lb_id: str) -> dict[str, Any]:
    _, body = site.call("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")
    live = [a for a in body["amphorae"] if a["status"] == "ALLOCATED"]
    assert len(live) == 1, body
    return live[0]


def _get(url: str, timeout: float = 0.5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def _metric(site: Site, name: str) -> float:
    _, text = site.call("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


class Probe(threading.Thread):
    """A request through the VIP every 50 ms; records when requests failed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[float, bool]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            try:
                ok = _get(self.url, timeout=PROBE_TIMEOUT).startswith("backend ")
            except OSError:
                ok = False
            self.results.append((started, ok))
            self.halt.wait(max(0.0, 0.05 - (time.monotonic() - started)))

    def outage(self) -> float:
        """From the first failed request to the first success after the last failure."""
        failed = [t for t, ok in self.results if not ok]
        if not failed:
            return 0.0
        after = [t for t, ok in self.results if ok and t > failed[-1]]
        assert after, "the VIP never recovered"
        return after[0] - failed[0]


def test_member_health_statuses_and_failover_through_the_vip(site: Site) -> None:
    ids = _build(site)
    vip_url = f"http://{ids['vip']}/"
    healthy = {"lb": "ONLINE", "listener": "ONLINE", "pool": "ONLINE",
               "members": ["ONLINE", "ONLINE"]}
    _wait_tree(site, ids, healthy, timeout=15)
    assert _get(vip_url).startswith("backend ")

    # A backend's health check fails: ERROR within delay x max_retries_down + 1 s.
    backend = ids["backends"][1]
    assert _get(f"http://{backend}:8080/healthcheck") == "ok\n"
    req = urllib.request.Request(f"http://{backend}:8080/healthcheck/down", method="POST")
    urllib.request.urlopen(req, timeout=2).read()
    degraded = {"lb": "DEGRADED", "listener": "ONLINE", "pool": "DEGRADED",
                "members": ["ONLINE", "ERROR"]}
    budget = ids["hm"]["delay"] * ids["hm"]["max_retries_down"] + 1
    took = _wait_tree(site, ids, degraded, timeout=budget)
    print(f"\nmember ERROR (pool and load balancer DEGRADED) after {took:.2f} s "
          f"(budget {budget} s)")
    bodies = {_get(vip_url).split("\n", 1)[0] for _ in range(6)}
    assert bodies == {f"backend {ids['backends'][0]}"}  # HAProxy stopped sending there
    req = urllib.request.Request(f"http://{backend}:8080/healthcheck/up", method="POST")
    urllib.request.urlopen(req, timeout=2).read()
    took = _wait_tree(site, ids, healthy, timeout=budget + 2)
    print(f"member ONLINE again after {took:.2f} s")

    # A forged heartbeat (wrong key) claiming everything is down changes nothing.
    amp = _amphora(site, ids["lb"])
    forged = {"id": amp["id"], "seq": 2**53, "ver": 3, "listeners": {}, "pools": {}}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(wrap_amphora_envelope(forged, "guessed-key"),
                    (f"{site.prefix['mgmt']}.1", 5555))
    bad = 'lbaas_health_heartbeats_rejected_total{reason="bad_signature"}'
    deadline = time.monotonic() + 5
    while _metric(site, bad) < 1:
        assert time.monotonic() < deadline, "forged heartbeat not counted"
        time.sleep(0.1)
    time.sleep(1.5)
    assert _tree(site, ids) == healthy

    # SINGLE: every process in the amphora's namespace dies; measure the outage at the VIP.
    stats_url = f"/v2/lbaas/listeners/{ids['listener']}/stats"
    before = site.call("GET", stats_url)[1]["stats"]["total_connections"]
    assert before > 0
    probe = Probe(vip_url)
    probe.start()
    time.sleep(1.0)
    ns = amp["compute_id"]
    pids = [p for space in (ns, names.data_netns_of(ns))  # the agent's and HAProxy's
            for p in subprocess.run(["ip", "netns", "pids", space], capture_output=True,
                                    text=True, check=True).stdout.split()]
    assert pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # HAProxy dies with its agent
            os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        _, body = site.call("GET", f"/v2/octavia/amphorae?loadbalancer_id={ids['lb']}")
        live = [a for a in body["amphorae"] if a["status"] == "ALLOCATED"]
        if len(live) == 1 and live[0]["id"] != amp["id"] and probe.results[-1][1]:
            break
        assert time.monotonic() < deadline, "no failover:\n" + site.log()
        time.sleep(0.1)
    time.sleep(1.0)
    probe.halt.set()
    probe.join(5)
    outage = probe.outage()
    failures = sum(1 for _, ok in probe.results if not ok)
    print(f"failover: outage {outage:.2f} s at the VIP ({failures} of {len(probe.results)} "
          f"requests failed); new amphora {live[0]['id']} in {live[0]['compute_id']}")
    assert 0 < outage <= 5.0
    assert live[0]["ha_ip"] == ids["vip"]
    site.wait_active(ids["lb"])
    _wait_tree(site, ids, healthy, timeout=10)
    assert _metric(site, "lbaas_health_failovers_requested_total") == 1
    # statistics are cumulative across the failover: the old amphora's counts stay
    for _ in range(3):
        _get(vip_url)
    time.sleep(1.5)
    after = site.call("GET", stats_url)[1]["stats"]["total_connections"]
    print(f"listener total_connections {before} before the failover, {after} after")
    assert after >= before + 3
