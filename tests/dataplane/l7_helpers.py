"""A real ``lbaas serve`` (local drivers) driven through the openstack CLI, for the L7,
PROMETHEUS and floating-IP end-to-end tests.

Key choice: ``own_networks`` gives a run its own three networks (unique names, so unique
bridges, in random 10.24x.y.0/24 blocks) through a TOML config, so these tests can run beside
other data-plane tests; the floating-IP scenario needs the default names and uses none.
Everything a server made is removed with ``lbaas teardown`` on its data directory.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
LBAAS = str(BIN / "lbaas")
OPENSTACK = str(BIN / "openstack")


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bridges)"
    for tool in ("haproxy", "ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path(OPENSTACK).exists():
        return "needs the openstack CLI in the venv"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leftovers(cidrs: list[str]) -> list[str]:
    """Host routes and addresses still mentioning any of ``cidrs`` (all /24s)."""
    prefixes = [c.rsplit(".", 1)[0] + "." for c in cidrs]
    lines = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    lines += subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    return [ln for ln in lines.splitlines() if any(p in ln for p in prefixes)]


def own_networks() -> tuple[str, dict[str, str]]:
    """TOML for three fresh networks; returns (toml, {role: subnet name})."""
    run = secrets.token_hex(2)
    second, third = random.randint(241, 249), random.randint(0, 255)
    roles = {"pub": 0, "priv": 1, "mgmt": 2}
    lines = [f'[networking]\nmanagement_network = "l7{run}mgmt"\n']
    for role, offset in roles.items():
        net = f"10.{second}.{(third + offset) % 256}"
        lines.append(f'[[networking.networks]]\nname = "l7{run}{role}"\n'
                     f'subnet_name = "l7{run}{role}-subnet"\ncidr = "{net}.0/24"\n'
                     f'gateway_ip = "{net}.1"\nallocation_start = "{net}.10"\n'
                     f'allocation_end = "{net}.200"\n')
    return "\n".join(lines), {r: f"l7{run}{r}-subnet" for r in roles}


@dataclass
class Server:
    root: Path
    config: Path | None
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    backends: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def base_args(self) -> list[str]:
        return ["--data-dir", str(self.root / "data")] + (
            ["--config", str(self.config)] if self.config else [])

    def openstack(self, *args: str) -> str:
        proc = subprocess.run([OPENSTACK, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def show(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.openstack(*args, "-f", "json")))

    def wait_active(self, lb: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.show("loadbalancer", "show", lb)["provisioning_status"]
            if status == "ACTIVE":
                return
            assert not status.startswith(("ERROR",)), f"load balancer {lb} went {status}"
            assert time.monotonic() < deadline, f"load balancer {lb} still {status}"
            time.sleep(0.2)

    def http_lb(self, name: str, vip_subnet: str, member_subnet: str,
                backend: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """A load balancer with an HTTP listener ``web`` on 80, a pool and one member on port 80
        at ``backend``, each step waited for: the load balancer, pool and member shown."""
        lb = self.show("loadbalancer", "create", "--name", name, "--vip-subnet-id", vip_subnet)
        self.wait_active(lb["id"])
        self.openstack("loadbalancer", "listener", "create", "--name", "web", "--protocol",
                       "HTTP", "--protocol-port", "80", lb["id"])
        self.wait_active(lb["id"])
        pool = self.show("loadbalancer", "pool", "create", "--listener", "web",
                         "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN")
        self.wait_active(lb["id"])
        member = self.show("loadbalancer", "member", "create", "--subnet-id", member_subnet,
                           "--address", backend, "--protocol-port", "80", pool["id"])
        self.wait_active(lb["id"])
        return lb, pool, member

    def backend(self, subnet: str, address: str, timeout: float = 30) -> None:
        log = self.root / f"backend-{address}.log"
        with log.open("wb") as out:
            self.backends.append(subprocess.Popen(
                [LBAAS, "backend", *self.base_args(), "--subnet", subnet, "--address", address],
                stdout=out, stderr=subprocess.STDOUT, env=self.env))
        deadline = time.monotonic() + timeout
        while "backend listening" not in log.read_text():
            assert self.backends[-1].poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)


def start_server(toml: str | None) -> Server:
    root = Path(tempfile.mkdtemp(prefix="l7e"))  # short: HAProxy's socket path limit
    config = None
    if toml is not None:
        config = root / "lbaas.toml"
        config.write_text(toml)
    server = Server(root=root, config=config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
    server.env = env
    log = root / "server.log"
    with log.open("wb") as out:
        server.proc = subprocess.Popen(
            [LBAAS, "serve", "--port", str(port), "--host", "127.0.0.1", *server.base_args()],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server.url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(server.url + "/", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        clouds = subprocess.run([LBAAS, "clouds-yaml", "--port", str(port),
                                 *server.base_args()], env=env, capture_output=True,
                                text=True, check=True).stdout
        (root / "clouds.yaml").write_text(clouds)
    except BaseException:
        stop_server(server)
        raise
    server.env = {**env, "OS_CLIENT_CONFIG_FILE": str(root / "clouds.yaml"),
                  "OS_CLOUD": "lbaas", "HOME": str(root)}
    return server


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stop_server(server: Server) -> str:
    """Stop backends and server, then ``lbaas teardown``; returns teardown's output."""
    for proc in server.backends:
        _stop(proc)
    if server.proc is not None:
        _stop(server.proc)
    out = subprocess.run([LBAAS, "teardown", *server.base_args()], env=server.env,
                         capture_output=True, text=True, timeout=120, check=False)
    shutil.rmtree(server.root, ignore_errors=True)
    return out.stdout + out.stderr


def http_get(url: str, headers: dict[str, str] | None = None,
             timeout: float = 5) -> tuple[int, str, str]:
    """(status, body, Location) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("Location") or ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Location") or ""
