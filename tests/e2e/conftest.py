"""End-to-end fixtures: a real ``lbaas serve`` process and a clouds.yaml from ``lbaas
clouds-yaml``, so the openstack CLI and openstacksdk talk to it exactly as a user's would.

The server gets a free port and its own data directory (SQLite); teardown stops the process
(SIGTERM, then SIGKILL), runs ``lbaas teardown`` on the data directory (as root the server
builds real amphorae: namespaces, bridges, routes) and removes the directory. The fixture is
per module so the default networks' bridges are gone before another module starts its own
server on them (tests/dataplane/test_e2e_traffic.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
LBAAS = str(BIN / "lbaas")
OPENSTACK = str(BIN / "openstack")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lbaas serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"lbaas serve did not answer on {url}:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Cloud:
    """A running server plus the environment the CLI needs to reach it."""

    url: str
    root: Path
    env: dict[str, str]

    def openstack(self, *args: str, check: bool = True, timeout: float = 120) \
            -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([OPENSTACK, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    root = Path(tempfile.mkdtemp(prefix="lbaas-e2e-"))
    port = free_port()
    data_dir = root / "data"
    log = root / "server.log"
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("OS_", "LBAAS_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [LBAAS, "serve", "--port", str(port), "--host", "127.0.0.1",
             "--data-dir", str(data_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=base_env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + "/", proc, log, timeout=60)
        clouds = subprocess.run([LBAAS, "clouds-yaml", "--port", str(port),
                                 "--data-dir", str(data_dir)],
                                env=base_env, capture_output=True, text=True, check=True)
        clouds_file = root / "clouds.yaml"
        clouds_file.write_text(clouds.stdout)
        env = {**base_env, "OS_CLIENT_CONFIG_FILE": str(clouds_file), "OS_CLOUD": "lbaas",
               "HOME": str(root)}
        yield Cloud(url=url, root=root, env=env)
    finally:
        stop(proc)
        teardown = subprocess.run([LBAAS, "teardown", "--data-dir", str(data_dir)],
                                  env=base_env, capture_output=True, text=True, timeout=120,
                                  check=False)
        shutil.rmtree(root, ignore_errors=True)
        assert teardown.returncode == 0, f"lbaas teardown failed:\n{teardown.stderr}"


@pytest.fixture()
def sdk_env(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    """Point in-process openstacksdk at the cloud (it reads the same variables)."""
    for key, value in cloud.env.items():
        if key.startswith("OS_"):
            monkeypatch.setenv(key, value)
    return cloud
