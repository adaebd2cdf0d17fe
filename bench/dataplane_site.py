"""Site of bench_dataplane.py: its networks and data dir, its processes, the API, HAProxy's CLI.

Key choice: the bench's three networks get random 10.24x.y.0/24 ranges and per-run names, so
their bridges (named from network ids) never collide with another lbaas on the host, and the
host keeps a gateway on each of them (none overlaps eth0) without being needed for the paths
measured. Everything is created under one short ``mkdtemp(prefix="lbb")`` directory.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from dataplane_kit import Netns, sh

from lbaas.agent.stats import query
from lbaas.drivers.local import names
from lbaas.store import seed

LBS = "/v2/lbaas/loadbalancers"
BACKEND_PORT = 8080
ROLES = ("pub", "priv", "mgmt")


@dataclass
class Site:
    tag: str
    dir: Path
    port: int
    prefixes: dict[str, str]  # role -> "10.24x.y"

    def net(self, role: str) -> str:
        return f"lbb{self.tag}-{role}"

    def subnet_id(self, role: str) -> str:
        return seed.subnet_id(f"{self.net(role)}-subnet")

    def bridge(self, role: str) -> str:
        return names.bridge_name(seed.network_id(self.net(role)))

    def ip(self, role: str, host: int) -> str:
        return f"{self.prefixes[role]}.{host}"

    def backends(self, count: int) -> list[str]:
        return [self.ip("priv", 20 + i) for i in range(count)]

    @property
    def common(self) -> list[str]:
        """``--config`` and ``--data-dir`` for every ``lbaas`` command of this site."""
        return ["--config", str(self.config), "--data-dir", str(self.dir)]

    @property
    def config(self) -> Path:
        return self.dir / "bench.toml"

    def write_config(self) -> None:
        nets = ",\n".join(
            f"  {{name = '{self.net(r)}', subnet_name = '{self.net(r)}-subnet', "
            f"cidr = '{self.ip(r, 0)}/24', gateway_ip = '{self.ip(r, 1)}', "
            f"allocation_start = '{self.ip(r, 10)}', allocation_end = '{self.ip(r, 200)}'}}"
            for r in ROLES)
        self.config.write_text(f'[controller]\ndrivers = "local"\n\n[networking]\n'
                               f"management_network = '{self.net('mgmt')}'\n"
                               f"networks = [\n{nets}\n]\n")


def make_site() -> Site:
    used = sh("ip", "route", "show", "table", "all") + sh("ip", "addr")
    prefixes: dict[str, str] = {}
    while len(prefixes) < len(ROLES):
        prefix = f"10.{random.randint(240, 249)}.{random.randint(0, 255)}"
        if f"{prefix}." not in used and prefix not in prefixes.values():
            prefixes[ROLES[len(prefixes)]] = prefix
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    site = Site(f"{random.getrandbits(16):04x}", Path(tempfile.mkdtemp(prefix="lbb")), port,
                prefixes)
    site.write_config()
    return site


# ---- processes ---------------------------------------------------------------------------------


def lbaas(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("lbaas")
    return [str(script), *args] if script.exists() else [
        sys.executable, "-c", "import sys; from lbaas.main.cli import main; sys.exit(main())",
        *args]


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def until(check: Any, what: str, timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise SystemExit(f"{what} did not happen within {timeout:g} s\n{tail}")
        time.sleep(0.05)


def reachable(client: Netns, host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(('{host}', {port}), timeout=0.5).close()"
    return subprocess.run(["ip", "netns", "exec", client.name, sys.executable, "-c", code],
                          capture_output=True).returncode == 0


HAND_CFG = """# hand-written: what an operator would write for the same job
global
    maxconn 8000
    stats socket {sock} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s

frontend web
    bind {vip}:80
    default_backend app

backend app
    balance roundrobin
{servers}
"""


def haproxy_cli(sock: Path, command: str) -> str:
    return query(str(sock), command, timeout=2)


def haproxy_info(sock: Path) -> dict[str, str]:
    text = haproxy_cli(sock, "show info")
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def backend_connects(sock: Path) -> tuple[int, int]:
    """(new server connections, reused ones) summed over the BACKEND rows of ``show stat``."""
    lines = haproxy_cli(sock, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    connect = reuse = 0
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("svname") == "BACKEND":
            connect += int(row.get("connect") or 0)
            reuse += int(row.get("reuse") or 0)
    return connect, reuse


# ---- API -------------------------------------------------------------------------------------


class Api:
    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(path, json=body)
        if resp.status_code != 201:
            raise SystemExit(f"POST {path} -> {resp.status_code}: {resp.text}")
        return dict(next(iter(resp.json().values())))

    def wait(self, lb_id: str, want: str = "ACTIVE", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.http.get(f"{LBS}/{lb_id}")
            status = "DELETED" if resp.status_code == 404 else \
                resp.json()["loadbalancer"]["provisioning_status"]
            if status == want:
                return
            if status == "ERROR":
                raise SystemExit(f"load balancer {lb_id} went to ERROR")
            time.sleep(0.005)
        raise SystemExit(f"load balancer {lb_id} not {want} after {timeout:g} s")

    def timed(self, lb_id: str, path: str, body: dict[str, Any],
              method: str = "POST") -> tuple[dict[str, Any], float]:
        """Send ``body``, then poll until the load balancer (``lb_id`` or the new one) is ACTIVE;
        returns the object and the seconds it all took."""
        t0 = time.perf_counter()
        if method == "POST":
            obj = self.post(path, body)
        else:
            resp = self.http.request(method, path, json=body)
            if resp.status_code not in (200, 202):
                raise SystemExit(f"{method} {path} -> {resp.status_code}: {resp.text}")
            obj = dict(next(iter(resp.json().values())))
        self.wait(lb_id or obj["id"])
        return obj, time.perf_counter() - t0




def amphora_namespaces(site: Site) -> list[str]:
    home = site.dir / "amphorae"
    made = {p.name for p in home.iterdir()} if home.is_dir() else set()
    return sorted(made & set(sh("ip", "netns", "list").split()))


def serve(site: Site, stack: Any) -> tuple[subprocess.Popen[bytes], Api]:
    """Start the site's ``lbaas serve`` and wait until it answers; ``stack`` (an ExitStack)
    stops it and then runs ``lbaas teardown`` on the site's data directory."""
    log = site.dir / "server.log"
    # Callbacks run last-first: the server stops, then teardown removes its namespaces.
    stack.callback(subprocess.run, lbaas("teardown", *site.common), capture_output=True)
    server = start(lbaas("serve", *site.common, "--port", str(site.port), "--host", "127.0.0.1",
                         "--auth-strategy", "noauth"), log)
    stack.callback(stop, server)
    api = Api(site.port)

    def ready() -> bool:
        if server.poll() is not None:
            raise SystemExit(f"lbaas serve exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return api.http.get("/").status_code == 200
        except httpx.HTTPError:
            return False

    until(ready, "lbaas serve answering", 60, log)
    return server, api
