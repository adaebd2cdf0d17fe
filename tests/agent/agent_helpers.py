"""Helpers for the agent tests: certificates, loopback HTTP backends, the agent process."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lbaas.agent.stats import query
from lbaas.certs import CertificateAuthority
from lbaas.drivers.agent_client import AgentAmphoraDriver
from lbaas.drivers.base import ComputeInfo

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Pki:
    ca: CertificateAuthority
    dir: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class Backend:
    """An HTTP server thread answering every GET with its name."""

    def __init__(self, name: str) -> None:
        body = name.encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.name = name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign] # L4 checks: RST
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AgentProcess:
    """``python -m lbaas.agent`` on 127.0.0.1:<random>, stopped with SIGTERM by the fixture."""

    def __init__(self, base: Path, pki: Pki) -> None:
        self.base, self.pki = base, pki
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.compute = ComputeInfo(compute_id="amp-test", lb_network_ip="127.0.0.1")
        # Tests of runtime changes check that no new worker appears: the reload that follows
        # runtime additions (LBAAS_AGENT_RELOAD_QUIET, 1.5 s by default) is tested on its own.
        self.env = {"LBAAS_AGENT_RELOAD_QUIET": "60"}
        self.extra_args: list[str] = []

    def start(self) -> None:
        log = open(self.base.parent / f"agent-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbaas.agent", "--base-dir", str(self.base),
             "--listen", f"127.0.0.1:{self.port}", "--ca-file", str(self.pki.ca_file),
             "--cert-file", str(self.pki.server_cert), "--key-file", str(self.pki.server_key),
             "--amphora-id", "amp-test", *self.extra_args], stdout=log, stderr=log,
            env={**os.environ, **self.env})
        log.close()
        self.call("wait_ready", self.compute, 20.0)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._kill_haproxy_left()

    def _kill_haproxy_left(self) -> None:
        # HAProxy is a daemon that outlives the agent: the serving one (pid file) and any old
        # one still draining, found by the test's base dir in their command line.
        kill_haproxies(self.base)

    def driver(self, **kw: Any) -> AgentAmphoraDriver:
        return AgentAmphoraDriver(str(self.pki.ca_file), str(self.pki.client_cert),
                                  str(self.pki.client_key), port=self.port, **kw)

    def call(self, method: str, *args: Any) -> Any:
        async def run() -> Any:
            driver = self.driver()
            try:
                return await getattr(driver, method)(*args)
            finally:
                await driver.aclose()

        return asyncio.run(run())

    def apply(self, cfg: str, digest: str, **extra: str) -> Any:
        return self.call("apply", self.compute, {"files": {"haproxy.cfg": cfg, **extra}}, digest)

    def stats_cli(self, command: str) -> str:
        return query(str(self.base / "run" / "haproxy.sock"), command, timeout=5)

    def worker_pid(self) -> int:
        for line in self.stats_cli("show info").splitlines():
            if line.startswith("Pid:"):
                return int(line.split()[1])
        raise AssertionError("no Pid in show info")


def haproxy_pids(base: Path) -> set[int]:
    """Live HAProxy processes whose command line names a path under ``base`` (a zombie's
    command line is empty: not counted)."""
    marker = str(base).encode() + b"/"
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if b"haproxy" in os.path.basename(args.split(b"\0")[0]) and marker in args:
            found.add(int(entry.name))
    return found


def kill_haproxies(base: Path, timeout: float = 5.0) -> None:
    """SIGKILL, by pid, every HAProxy of ``base`` (pid file and draining ones); wait for them."""
    pids = haproxy_pids(base)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not pids & haproxy_pids(base), timeout), pids


class Probe:
    """GETs on fresh connections from a thread while a test does something else."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                get(self.port)
                self.ok += 1
            except Exception as exc:
                self.failures.append(repr(exc))

    def wait_more(self, n: int, timeout: float = 5.0) -> bool:
        """True once ``n`` more requests succeeded."""
        target = self.ok + n
        return wait_for(lambda: self.ok >= target, timeout)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def haproxy_cfg(fe_port: int, servers: list[str], extra_frontend: str = "") -> str:
    """A config following the renderer's conventions (stats socket in ${LBAAS_RUN_DIR})."""
    lines = [
        "global",
        '    stats socket "${LBAAS_RUN_DIR}/haproxy.sock" mode 600 level admin '
        "expose-fd listeners",
        "    maxconn 2000",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "frontend listener-1",
        f"    bind 127.0.0.1:{fe_port}",
        *([f"    {extra_frontend}"] if extra_frontend else []),
        "    default_backend pool-1",
        "backend pool-1",
        "    balance roundrobin",
        *[f"    server {s}" for s in servers],
        "",
    ]
    return "\n".join(lines)


def get(port: int, timeout: float = 3.0) -> tuple[str, dict[str, str]]:
    """One GET on a fresh connection: (body, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise AssertionError(f"status {resp.status}: {body}")
        return body, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False
