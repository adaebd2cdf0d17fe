"""Driving a lab fleet from tests and the bench: ``lbaas lab``, ``lbaas serve``, the API."""

from __future__ import annotations

import json
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbaas.drivers.local import host_guard, ownership, underlay_guard
from lbaas.store import seed

BIN = Path(sys.executable).parent
PROBE_PERIOD = 0.05


def until(check: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


class FleetLab:
    """``lbaas lab up`` in a temporary data directory and ``lbaas serve`` on its settings."""

    def __init__(self) -> None:
        # short: HAProxy's socket paths live under it
        self.root = Path(tempfile.mkdtemp(prefix="lbfl", dir="/tmp"))
        self.data = self.root / "d"
        self.serve: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.tag = ""
        self.links_before = self._links()
        self.netns_before = set(self._netns())

    # lab ---------------------------------------------------------------------------------------
    def lbaas(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([str(BIN / "lbaas"), *args], capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"lbaas {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def up(self, hosts: int = 3, extra_settings: str = "", lab_args: tuple[str, ...] = (),
           edit_settings: Callable[[str], str] | None = None) -> None:
        self.lbaas("lab", "up", "--hosts", str(hosts), "--data-dir", str(self.data), *lab_args)
        state = json.loads((self.data / "lab" / "lab.json").read_text())
        self.tag = state["tag"]
        self.hosts = {h["name"]: h for h in state["hosts"]}
        config = self.data / "lab.toml"
        if extra_settings:
            config.write_text(config.read_text() + "\n" + extra_settings)
        if edit_settings is not None:
            config.write_text(edit_settings(config.read_text()))
        port = next(int(line.split("=")[1]) for line in config.read_text().splitlines()
                    if line.startswith("port ="))
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.root / "serve.log", "ab")
        self.serve = subprocess.Popen([str(BIN / "lbaas"), "serve", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT)
        log.close()
        assert until(self._answers, 30), self.log()
        # the host-agents register themselves; a host is up once the controller's poll answered
        assert until(lambda: len([r for r in self.host_rows() if r[-1] != "None"]) == hosts,
                     20), self.log()

    def _answers(self) -> bool:
        assert self.serve is not None and self.serve.poll() is None, self.log()
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1):
                return True
        except OSError:
            return False

    def host_rows(self) -> list[list[str]]:
        out = self.lbaas("host", "list", "--config", str(self.data / "lab.toml"))
        return [line.split() for line in out.splitlines()[1:] if line.strip()]

    def down(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait(5)
        self.lbaas("lab", "down", "--data-dir", str(self.data))

    def cleanup(self) -> None:
        """Remove the temporary directory (after ``down`` and the leftover check)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Namespaces, links and processes of this lab still present."""
        found = [n for n in set(self._netns()) - self.netns_before
                 if self.tag in n or (n.startswith(("amp-", "ampd-", "lbbe-"))
                 and self._is_ours(n))]
        found += [link for link in self._links() - self.links_before if self.tag in link
                  or (link.startswith(("lbr", "vx")) and self._link_ours(link))]
        found += [f"process {p}" for p in sh("pgrep", "-f", str(self.data), check=False).split()]
        mark = ownership.mark_for(self.data)
        for table in (host_guard.table_name(mark), underlay_guard.table_name(mark)):
            if table in sh("nft", "list", "tables", check=False).split():
                found.append(f"nftables table inet {table}")
        return found

    def _is_ours(self, ns: str) -> bool:
        return any((self.data / "lab" / "hosts").glob(f"*/a/amphorae/{ns}")) or \
            any((self.data / "lab" / "hosts").glob(f"*/a/backends/{ns}"))

    def _link_ours(self, link: str) -> bool:
        try:
            return str(self.data) in Path(f"/sys/class/net/{link}/ifalias").read_text()
        except OSError:
            return False

    @staticmethod
    def _links() -> set[str]:
        return {line.split(":")[1].strip().split("@")[0]
                for line in sh("ip", "-o", "link").splitlines()}

    @staticmethod
    def _netns() -> list[str]:
        return [line.split()[0] for line in sh("ip", "netns", "list").splitlines()]

    def kill_host(self, name: str) -> None:
        self.lbaas("lab", "kill-host", name, "--data-dir", str(self.data))

    def backend(self, host: str, address: str) -> None:
        self.lbaas("lab", "backend", host, address, "--data-dir", str(self.data))

    def client(self, *argv: str) -> str:
        return sh("ip", "netns", "exec", f"lbh{self.tag}-client", *argv, check=False)

    def log(self) -> str:
        try:
            return (self.root / "serve.log").read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    # API ---------------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None
        return json.loads(text) if text else None

    @staticmethod
    def subnet_id(network: str) -> str:
        return seed.subnet_id(f"{network}-subnet")

    def lb_status(self, lb_id: str) -> str:
        return str(self.api("GET", f"/v2/lbaas/loadbalancers/{lb_id}")["loadbalancer"]
                   ["provisioning_status"])

    def wait_active(self, lb_id: str, timeout: float = 60) -> None:
        def active() -> bool:
            status = self.lb_status(lb_id)
            assert status != "ERROR", self.log()
            return status == "ACTIVE"
        assert until(active, timeout, 0.05), self.log()

    def flavor(self, topology: str) -> str:
        profile = self.api("POST", "/v2/lbaas/flavorprofiles", {"flavorprofile": {
            "name": f"fp-{topology}", "provider_name": "amphora",
            "flavor_data": json.dumps({"loadbalancer_topology": topology})}})["flavorprofile"]
        return str(self.api("POST", "/v2/lbaas/flavors", {"flavor": {
            "name": f"f-{topology}", "flavor_profile_id": profile["id"],
            "enabled": True}})["flavor"]["id"])

    def zone(self, name: str, compute_zone: str) -> str:
        profile = self.api("POST", "/v2/lbaas/availabilityzoneprofiles", {
            "availability_zone_profile": {
                "name": f"azp-{name}", "provider_name": "amphora",
                "availability_zone_data": json.dumps({"compute_zone": compute_zone})}})
        self.api("POST", "/v2/lbaas/availabilityzones", {"availability_zone": {
            "name": name, "enabled": True, "availability_zone_profile_id":
            profile["availability_zone_profile"]["id"]}})
        return name

    def load_balancer(self, name: str, flavor: str | None = None, zone: str | None = None,
                      members: tuple[str, ...] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "vip_subnet_id": self.subnet_id("lab-public")}
        if flavor:
            body["flavor_id"] = flavor
        if zone:
            body["availability_zone"] = zone
        lb = self.api("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": body})["loadbalancer"]
        self.wait_active(lb["id"])
        return self.add_members(lb, members) if members else dict(lb)

    def add_members(self, lb: dict[str, Any], members: tuple[str, ...]) -> dict[str, Any]:
        """An HTTP listener on port 80 with a ROUND_ROBIN pool of ``members`` (lab-private)."""
        if members:
            listener = self.api("POST", "/v2/lbaas/listeners", {"listener": {
                "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
            self.wait_active(lb["id"])
            pool = self.api("POST", "/v2/lbaas/pools", {"pool": {
                "listener_id": listener["listener"]["id"], "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN"}})["pool"]
            self.wait_active(lb["id"])
            for address in members:
                self.api("POST", f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
                    "address": address, "protocol_port": 80,
                    "subnet_id": self.subnet_id("lab-private")}})
                self.wait_active(lb["id"])
        return dict(lb)

    def amphorae(self, lb_id: str) -> list[dict[str, Any]]:
        return [a for a in self.api("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")
                ["amphorae"] if a["status"] != "DELETED"]

    def host_of(self, amp: dict[str, Any]) -> str:
        return str(amp["compute_id"]).split("/", 1)[0]


class Probe(threading.Thread):
    """GET / through the VIP every 50 ms on a new connection, from the controller's namespace;
    records (time, backend line or None). ``hold``: seconds between connecting and sending
    the request (a connection then likely spans a VIP's move to another amphora)."""

    def __init__(self, vip: str, hold: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.vip = vip
        self.hold = hold
        self.results: list[tuple[float, str | None]] = []
        self.errors: dict[float, str] = {}  # why a probe failed, by its start
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            answer, error = fetch(self.vip, hold=self.hold)
            self.results.append((started, answer))
            if error:
                self.errors[started] = f"{error} after {time.monotonic() - started:.3f} s"
            self.stop.wait(max(0.0, PROBE_PERIOD - (time.monotonic() - started)))

    def answered(self) -> int:
        return sum(r is not None for _, r in self.results)

    def outage_after(self, moment: float, window: float = 15.0) -> float:
        """From the last answer before the first failed probe (after ``moment``) to the first
        answer after the last failed one; 0 if none failed."""
        failed = [t for t, r in self.results if r is None and moment <= t <= moment + window]
        if not failed:
            return 0.0
        ok = [t for t, r in self.results if r is not None]
        before = max((t for t in ok if t < failed[0]), default=moment)
        after = min((t for t in ok if t > failed[-1]), default=float("inf"))
        return after - before


def get(vip: str, timeout: float = 0.3) -> str | None:
    """One HTTP GET through the VIP; the backend's first line, or None."""
    return fetch(vip, timeout)[0]


def fetch(vip: str, timeout: float = 0.3, hold: float = 0.0) -> tuple[str | None, str]:
    """One HTTP GET through the VIP: (the backend's first line, "") or (None, why not)."""
    try:
        with socket.create_connection((vip, 80), timeout=timeout) as s:
            s.settimeout(timeout)
            if hold:
                time.sleep(hold)
            s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError as exc:
        return None, repr(exc)
    if not data.startswith(b"HTTP/1.1 200"):
        return None, f"answer {data[:40]!r}"
    return data.partition(b"\r\n\r\n")[2].split(b"\n", 1)[0].decode(errors="replace"), ""
