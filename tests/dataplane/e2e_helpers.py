"""Helpers for the end-to-end traffic tests: a real ``lbaas serve`` on the local data plane,
demo backends, a paced keep-alive load generator and snapshots of what the host holds.

Key choice: the server runs with the default networks (public 172.24.4.0/24, private
10.0.0.0/24, lb-mgmt-net 198.51.100.0/24) exactly as a user would start it, so its bridges have
fixed names; ``start_plane`` refuses to run beside another data plane that already uses them.
"""

from __future__ import annotations

import http.client
import json
import os
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbaas.drivers.local import names
from lbaas.store import seed

BIN = Path(sys.executable).parent
LBAAS = str(BIN / "lbaas")
OPENSTACK = str(BIN / "openstack")
DEFAULT_NETWORKS = ("public", "private", "lb-mgmt-net")
DEFAULT_CIDRS = ("172.24.4.0/24", "10.0.0.0/24", "198.51.100.0/24")


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bridges)"
    for tool in ("haproxy", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path(OPENSTACK).exists():
        return "needs the openstack CLI in the venv"
    return None


def default_bridges() -> set[str]:
    return {names.bridge_name(seed.network_id(n)) for n in DEFAULT_NETWORKS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[Any], timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)


@dataclass
class Plane:
    """A running ``lbaas serve`` with its data directory, CLI environment and backends."""

    root: Path
    data_dir: Path
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    backends: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.api(method, path, body)
        assert status in (200, 201, 202, 204), f"{method} {path}: {status} {data}"
        return data

    def openstack(self, *args: str) -> str:
        proc = subprocess.run([OPENSTACK, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def lb(self, lb_id: str) -> dict[str, Any] | None:
        status, data = self.api("GET", f"/v2/lbaas/loadbalancers/{lb_id}")
        if status == 404:
            return None
        assert status == 200, data
        return dict(data["loadbalancer"])

    def wait_lb(self, lb_id: str, wanted: str | None, timeout: float = 60,
                interval: float = 0.05) -> None:
        """Poll until the load balancer's provisioning_status is ``wanted`` (None: gone)."""
        deadline = time.monotonic() + timeout
        while True:
            lb = self.lb(lb_id)
            seen = None if lb is None else lb["provisioning_status"]
            if seen == wanted:
                return
            assert seen is None or seen.startswith("PENDING"), f"load balancer went {seen}"
            assert time.monotonic() < deadline, f"load balancer still {seen}, wanted {wanted}"
            time.sleep(interval)

    def start_backends(self, *addresses: str, timeout: float = 30) -> None:
        """``lbaas backend --subnet private-subnet --address A`` each, until they listen."""
        for address in addresses:
            out = (self.root / f"backend-{address}.log").open("wb")
            self.backends[address] = subprocess.Popen(
                [LBAAS, "backend", "--data-dir", str(self.data_dir), "--subnet",
                 "private-subnet", "--address", address], stdout=out,
                stderr=subprocess.STDOUT, env=self.env)
            out.close()
        deadline = time.monotonic() + timeout
        for address in addresses:
            log = self.root / f"backend-{address}.log"
            while "backend listening" not in log.read_text():
                assert self.backends[address].poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"backend {address}: {log.read_text()}"
                time.sleep(0.05)

    def stop_backends(self) -> dict[str, int]:
        return {address: _stop(proc) for address, proc in self.backends.items()}


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"lbaas serve exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"lbaas serve did not answer:\n{log.read_text()}")


def start_plane() -> Plane:
    """Start ``lbaas serve`` (local drivers) in a fresh short data directory."""
    busy = default_bridges() & {ln.split(":")[1].strip().split("@")[0]
                                for ln in sh("ip", "-o", "link").splitlines()}
    if busy:
        raise RuntimeError(f"another lbaas data plane uses the default networks: {busy}")
    root = Path(tempfile.mkdtemp(prefix="lbe"))  # short: HAProxy's socket path limit
    data_dir = root / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([LBAAS, "serve", "--port", str(port), "--host", "127.0.0.1",
                                 "--data-dir", str(data_dir)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    plane = Plane(root=root, data_dir=data_dir, url=url, env=env, proc=proc)
    try:
        _wait_up(url + "/", proc, log, timeout=60)
        clouds = sh(LBAAS, "clouds-yaml", "--port", str(port), "--data-dir", str(data_dir))
        (root / "clouds.yaml").write_text(clouds)
    except BaseException:
        stop_plane(plane)
        raise
    plane.env = {**env, "OS_CLIENT_CONFIG_FILE": str(root / "clouds.yaml"),
                 "OS_CLOUD": "lbaas", "HOME": str(root)}
    return plane


def stop_plane(plane: Plane) -> list[str]:
    """Stop backends and server, ``lbaas teardown`` the data dir; return what is left."""
    plane.stop_backends()
    _stop(plane.proc)
    amp_dir = plane.data_dir / "amphorae"
    made = {p.name for p in amp_dir.iterdir()} if amp_dir.is_dir() else set()
    subprocess.run([LBAAS, "teardown", "--data-dir", str(plane.data_dir)], env=plane.env,
                   capture_output=True, timeout=120, check=False)
    made |= {names.data_netns_of(ns) for ns in made}  # each amphora's second namespace
    ours = made | default_bridges() | {names.backend_netns(a) for a in plane.backends} \
        | {names.backend_host_leg(a) for a in plane.backends}
    left = [f"netns {n}" for n in sh("ip", "netns", "list").split() if n in ours]
    left += [f"link {ln}" for ln in sh("ip", "-o", "link").splitlines()
             if any(f": {n}:" in ln or f": {n}@" in ln for n in ours)]
    left += [f"route {r}" for r in sh("ip", "route", "show", "table", "all").splitlines()
             if _our_route(r.split())]
    left += [f"process {p}" for p in processes(str(plane.root))]
    if not left:
        shutil.rmtree(plane.root, ignore_errors=True)
    return left


def _our_route(words: list[str]) -> bool:
    """An unreachable route for a default subnet, or a default subnet on an lbaas bridge."""
    if words[:1] == ["unreachable"]:
        return words[1:2] != [] and words[1] in DEFAULT_CIDRS
    dev = words[words.index("dev") + 1] if "dev" in words[:-1] else ""
    return words[:1] != [] and words[0] in DEFAULT_CIDRS and dev.startswith(names.BRIDGE_PREFIX)


def processes(needle: str) -> list[str]:
    """``pid args`` of every process whose command line mentions ``needle``."""
    me = os.getpid()
    return [ln.strip() for ln in sh("ps", "-ww", "-eo", "pid=,args=").splitlines()
            if needle in ln and int(ln.split()[0]) != me and "ps -eo" not in ln]


@dataclass
class Snapshot:
    """What the host shows, each list filtered to lines mentioning the given needles."""

    netns: list[str]
    links: list[str]
    addrs: list[str]
    routes: list[str]
    procs: list[str]
    files: list[str]

    def empty(self) -> bool:
        return not any((self.netns, self.links, self.addrs, self.routes, self.procs,
                        self.files))

    def report(self, title: str) -> str:
        out = [f"--- {title}"]
        for key, lines in vars(self).items():
            out += [f"{key}: {ln}" for ln in lines] or [f"{key}: (none)"]
        return "\n".join(out)


def snapshot(needles: set[str], files_under: Path) -> Snapshot:
    def mention(lines: list[str]) -> list[str]:
        return [ln.strip() for ln in lines if any(n in ln for n in needles)]

    routes = sh("ip", "route", "show", "table", "all").splitlines() \
        + sh("ip", "-6", "route", "show", "table", "all").splitlines()
    procs = [p for n in sorted(needles) for p in processes(n)
             if "haproxy" in p or "lbaas.agent" in p or "lbaas-agent" in p]
    files = sorted(str(p) for p in files_under.rglob("*")) if files_under.exists() else []
    return Snapshot(netns=mention(sh("ip", "netns", "list").splitlines()),
                    links=mention(sh("ip", "-o", "link").splitlines()),
                    addrs=mention(sh("ip", "-o", "addr").splitlines()),
                    routes=mention(routes), procs=sorted(set(procs)), files=files)


class LoadGenerator:
    """Keep-alive HTTP/1.1 clients in threads, each pausing ``pause`` s between requests.

    Every answer is counted by body; anything but a 200 from a demo backend is an error. The
    pause leaves CPU to the control plane on a 2-core machine while still sampling the VIP every
    ~``pause / clients`` seconds."""

    def __init__(self, host: str, port: int = 80, clients: int = 4, pause: float = 0.004) -> None:
        self.host, self.port, self.clients, self.pause = host, port, clients, pause
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.first_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LoadGenerator:
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def count(self, body: str) -> int:
        with self._lock:
            return self.counts[body]

    def forget(self, body: str) -> None:
        with self._lock:
            self.first_seen.pop(body, None)

    def wait_seen(self, body: str, timeout: float = 10) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if body in self.first_seen:
                    return self.first_seen[body]
            time.sleep(0.001)
        return None

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").split("\n", 1)[0]  # who answered
                now = time.monotonic()
                with self._lock:
                    if resp.status != 200 or not body.startswith("backend "):
                        self.errors.append(f"{now:.3f} {resp.status} {body[:100]}")
                    self.counts[body] += 1
                    self.first_seen.setdefault(body, now)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"{time.monotonic():.3f} {exc!r}")
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(self.pause)
        if conn is not None:
            conn.close()
