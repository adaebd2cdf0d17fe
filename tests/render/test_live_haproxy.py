"""Rendered configs run by a real HAProxy on loopback: what clients and members actually see.

Members are small HTTP/TCP servers on 127.0.0.1; the VIP is 127.0.0.1 on free ports. This
checks the parts a syntax check cannot: quoted values arrive byte-exact (health check path,
APP_COOKIE name with HAProxy-special characters), headers are inserted, allowed_cidrs rejects,
disabled members get nothing, and SOURCE_IP_PORT spreads one client's connections.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from render_aggregates import listener, load_balancer, member, monitor, pool, spec

from lbaas.render import RenderOptions, render_haproxy_config
from lbaas.render.escaping import quote

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

COOKIE = "sess'#$id"
CHECK_PATH = "/health'z#$(x)%41"


class Member(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, lower-case headers)
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Member

    def do_GET(self) -> None:
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"{COOKIE}={self.server.name}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def members() -> Iterator[list[Member]]:
    servers = [Member(f"m{i}") for i in range(3)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def run_haproxy(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(lb: dict[str, Any], ports: list[int]) -> None:
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(render_haproxy_config(spec(lb), RenderOptions()))
        env = {**os.environ, "LBAAS_RUN_DIR": str(tmp_path)}
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        deadline = time.monotonic() + 5
        for port in ports:
            while True:
                assert procs[0].poll() is None, procs[0].stderr.read()  # type: ignore[union-attr]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "haproxy did not listen"
                    time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _get(port: int, headers: dict[str, str] | None = None) -> tuple[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/app", headers=headers or {})
        resp = conn.getresponse()
        return resp.read().decode(), resp.getheader("Set-Cookie") or ""
    finally:
        conn.close()


def test_http_listener_end_to_end(members: list[Member], run_haproxy: Any) -> None:
    m = [member(i, 1, "127.0.0.1", s.server_address[1]) for i, s in enumerate(members)]
    m[2]["admin_state_up"] = False
    hm = monitor(1, 1, delay=1, timeout=1, url_path=CHECK_PATH, http_version=1.1,
                 domain_name="app.example.com")
    p = pool(1, members=m, healthmonitor=hm,
             session_persistence={"type": "APP_COOKIE", "cookie_name": COOKIE})
    open_port, closed_port = _free_port(), _free_port()
    lb = load_balancer(vip_address="127.0.0.1", pools=[p], listeners=[
        listener(1, port=open_port, default_pool_id=p["id"], insert_headers={
            "X-Forwarded-For": "true", "X-Forwarded-Port": "true",
            "X-Forwarded-Proto": "true", "X-Real-IP": "true"}),
        listener(2, port=closed_port, allowed_cidrs=["192.0.2.0/24"]),
    ])
    run_haproxy(lb, [open_port])

    bodies = {_get(open_port)[0] for _ in range(6)}
    assert bodies == {"m0", "m1"}  # round robin, never the disabled member
    app = [h for s in members for path, h in s.seen if path == "/app"]
    assert app[0]["x-real-ip"] == "127.0.0.1" and app[0]["x-forwarded-for"] == "127.0.0.1"
    assert app[0]["x-forwarded-port"] == str(open_port)
    assert app[0]["x-forwarded-proto"] == "http"

    # APP_COOKIE: the member's cookie (named with ' # $) pins the client to that member.
    for name in ("m0", "m1"):
        answers = {_get(open_port, {"Cookie": f"{COOKIE}={name}"})[0] for _ in range(4)}
        assert answers == {name}

    deadline = time.monotonic() + 5
    while not any(path == CHECK_PATH for path, _ in members[0].seen):
        assert time.monotonic() < deadline, members[0].seen
        time.sleep(0.1)
    check = next(h for path, h in members[0].seen if path == CHECK_PATH)
    assert check["host"] == "app.example.com"
    assert not [p for p, _ in members[2].seen]  # disabled: no traffic, no checks

    # allowed_cidrs: 127.0.0.1 is not in 192.0.2.0/24: accepted by the kernel, then closed or
    # reset by HAProxy before any byte (a refused connect would mean nothing listens).
    try:
        with socket.create_connection(("127.0.0.1", closed_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.recv(100) == b""
    except ConnectionResetError:
        pass

def test_source_ip_port_spreads_one_clients_connections(members: list[Member],
                                                         run_haproxy: Any) -> None:
    m = [member(i, 1, "127.0.0.1", s.server_address[1]) for i, s in enumerate(members[:2])]
    p = pool(1, "TCP", "SOURCE_IP_PORT", members=m)
    port = _free_port()
    lb = load_balancer(vip_address="127.0.0.1", pools=[p],
                       listeners=[listener(1, "TCP", port, default_pool_id=p["id"])])
    run_haproxy(lb, [port])
    answers = [_get(port)[0] for _ in range(24)]
    # Same source address every time: only the source port can spread them.
    assert set(answers) == {"m0", "m1"}


TRICKY = ["a'b", "''", "\\'", "a#b", "${HOME}", "$HOME", 'a"b', "a\\b", "a b", "\t", "%[src]"]


def test_quote_round_trips_through_haproxys_parser(tmp_path: Path) -> None:
    """Each quoted word reaches HAProxy as exactly the original string."""
    ports = [_free_port() for _ in TRICKY]
    lines = ["global", "    maxconn 100", "defaults", "    mode http", "    timeout client 5s",
             "    timeout server 5s", "    timeout connect 5s"]
    for port, value in zip(ports, TRICKY, strict=True):
        lines += [f"frontend f{port}", f"    bind 127.0.0.1:{port}",
                  f"    http-request return status 200 content-type text/plain string "
                  f"{quote(value)}"]
    cfg = tmp_path / "q.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stderr=subprocess.PIPE)
    try:
        for port, value in zip(ports, TRICKY, strict=True):
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert _get(port)[0] == value
                    break
                except ConnectionRefusedError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
