"""``lbaas serve`` processes for the browser tests, each with its own data directory, port and
settings file: fake drivers (noauth or Keystone), or the real data plane on networks of its own.

The data-plane server names its three networks uniquely and gives them random unused
10.24x.y.0/24 prefixes, so its bridges never meet the default networks' or another test's, and
``close()`` stops backends and server and runs ``lbaas teardown`` on its data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "dataplane"))

from e2e_helpers import _stop, free_port

LBAAS = str(Path(sys.executable).parent / "lbaas")




class Server:
    """One ``lbaas serve`` with the given TOML settings (appended after the defaults here)."""

    def __init__(self, settings: str, prefix: str = "dsh") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: socket paths
        self.data = self.root / "data"
        self.config = self.root / "lbaas.toml"
        self.config.write_text(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
        self.proc: subprocess.Popen[bytes] | None = None
        self.backends: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 60) -> Server:
        with open(self.root / "serve.log", "wb") as log:
            self.proc = subprocess.Popen(
                [LBAAS, "serve", "--config", str(self.config), "--data-dir", str(self.data),
                 "--port", str(self.port), "--host", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"lbaas serve exited:\n{self.log()}"
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"lbaas serve did not answer:\n{self.log()}")

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-6000:]

    def call(self, method: str, path: str, body: Any = None,
             token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        return status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, data = self.call(method, path, body, token)
        assert status in (200, 201, 202, 204), f"{method} {path}: {status} {data}"
        return data

    def backend(self, subnet: str, address: str, port: int = 80) -> None:
        """``lbaas backend`` (the demo HTTP server in its own namespace), until it listens."""
        proc = subprocess.Popen(
            [LBAAS, "backend", "--config", str(self.config), "--data-dir", str(self.data),
             "--subnet", subnet, "--address", address, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env)
        self.backends.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"lbaas backend:" in line, line + proc.stdout.read()

    def close(self) -> str:
        """Stop everything and remove what the data directory made; returns teardown's errors."""
        for proc in self.backends:
            _stop(proc)
        if self.proc is not None:
            _stop(self.proc, 30)
        teardown = subprocess.run(
            [LBAAS, "teardown", "--config", str(self.config), "--data-dir", str(self.data)],
            capture_output=True, text=True, timeout=120, check=False, env=self.env)
        shutil.rmtree(self.root, ignore_errors=True)
        return "" if teardown.returncode == 0 else teardown.stderr


def fake_settings(extra: str = "", vip_hosts: int = 200) -> str:
    """Fake drivers; the networks exist only as rows, so a large VIP subnet costs nothing."""
    if vip_hosts <= 240:
        return f"[controller]\ndrivers = 'fake'\nresync_interval = 0.5\n{extra}"
    return ("[controller]\ndrivers = 'fake'\nresync_interval = 0.5\n"
            "[networking]\nmanagement_network = 'lb-mgmt-net'\nnetworks = ["
            "{name = 'public', subnet_name = 'public-subnet', cidr = '10.200.0.0/20', "
            "gateway_ip = '10.200.0.1', allocation_start = '10.200.0.10', "
            "allocation_end = '10.200.15.250'}, "
            "{name = 'private', subnet_name = 'private-subnet', cidr = '10.201.0.0/24', "
            "gateway_ip = '10.201.0.1', allocation_start = '10.201.0.10', "
            "allocation_end = '10.201.0.250'}, "
            "{name = 'lb-mgmt-net', subnet_name = 'lb-mgmt-subnet', cidr = '10.202.0.0/24', "
            "gateway_ip = '10.202.0.1', allocation_start = '10.202.0.10', "
            f"allocation_end = '10.202.0.250'}}]\n{extra}")
