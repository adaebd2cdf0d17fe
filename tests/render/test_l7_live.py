"""L7 policies and PROMETHEUS listeners rendered and run by a real HAProxy on loopback.

What a syntax check cannot show: the first matching policy by position wins (even a REJECT
placed after a REDIRECT_TO_POOL), every compare type matches what Octavia documents, inverted
and disabled rules behave, redirect targets arrive byte-exact (``%`` and quotes included) with
the requested code, and the PROMETHEUS listener answers a scrape a Prometheus parser accepts.
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
from render_aggregates import l7policy, listener, load_balancer, member, pool, spec, uid

from lbaas.render import RenderOptions, render_haproxy_config

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

ODD_URL = "https://example.com/moved?x=%41'#$(HOME)%[src]"


class Named(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(("127.0.0.1", 0), Answer)


class Answer(BaseHTTPRequestHandler):
    server: Named

    def do_GET(self) -> None:
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(lb: dict[str, Any], port: int) -> None:
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(render_haproxy_config(spec(lb), RenderOptions()))
        env = {**os.environ, "LBAAS_RUN_DIR": str(tmp_path)}
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while True:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def servers() -> Iterator[dict[str, Named]]:
    named = {n: Named(n) for n in ("default", "static", "api")}
    for s in named.values():
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield named
    for s in named.values():
        s.shutdown()
        s.server_close()


def _rule(n: int, kind: str, compare: str, value: str, **over: Any) -> dict[str, Any]:
    rule = l7policy(n, 1)["rules"][0]
    rule.update(id=uid("rule", n), type=kind, compare_type=compare, value=value, **over)
    return rule


def _request(port: int, path: str, headers: dict[str, str] | None = None) \
        -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp.getheader("Location") or ""
    finally:
        conn.close()


def test_policies_match_in_position_order(servers: dict[str, Named], haproxy: Any) -> None:
    pools = {n: pool(i, members=[member(i, i, "127.0.0.1", s.server_address[1])])
             for i, (n, s) in enumerate(servers.items(), start=1)}
    policies = [
        # position 2 in id order 1: a REDIRECT_TO_POOL must not lose to the later REJECT
        l7policy(1, 1, 2, action="REDIRECT_TO_POOL", redirect_pool_id=pools["static"]["id"],
                 rules=[_rule(1, "PATH", "STARTS_WITH", "/js"),
                        _rule(2, "HOST_NAME", "EQUAL_TO", "internal.example", invert=True)]),
        l7policy(2, 1, 1, action="REJECT", rules=[
            _rule(3, "HEADER", "EQUAL_TO", '"very bad"', key="X-Client"),
            _rule(4, "PATH", "EQUAL_TO", "/never", admin_state_up=False)]),
        l7policy(3, 1, 3, action="REJECT", rules=[_rule(5, "PATH", "CONTAINS", "/")]),
        l7policy(4, 1, 4, action="REDIRECT_TO_POOL", redirect_pool_id=pools["api"]["id"],
                 rules=[_rule(6, "PATH", "REGEX", r"^/api/v[0-9]+/"),
                        _rule(7, "COOKIE", "ENDS_WITH", "-beta", key="tier")]),
        l7policy(5, 1, 5, action="REDIRECT_TO_POOL", redirect_pool_id=pools["api"]["id"],
                 rules=[_rule(8, "FILE_TYPE", "EQUAL_TO", "json")]),
        l7policy(6, 1, 6, action="REDIRECT_PREFIX", redirect_prefix="https://secure.example",
                 redirect_http_code=301, rules=[_rule(9, "HOST_NAME", "ENDS_WITH", ".plain")]),
        l7policy(7, 1, 7, action="REDIRECT_TO_URL", redirect_url=ODD_URL,
                 redirect_http_code=307, rules=[_rule(10, "HEADER", "CONTAINS", "go",
                                                      key="X-Move")]),
    ]
    policies[2]["admin_state_up"] = False  # would reject everything
    port = _free_port()
    lb = load_balancer(vip_address="127.0.0.1", pools=list(pools.values()), listeners=[
        listener(1, port=port, default_pool_id=pools["default"]["id"], l7policies=policies)])
    haproxy(lb, port)

    assert _request(port, "/js/app.js")[:2] == (200, "static")
    assert _request(port, "/js/app.js", {"X-Client": "very bad"})[0] == 403
    assert _request(port, "/index.html", {"X-Client": "very bad"})[0] == 403
    assert _request(port, "/index.html", {"X-Client": "bad"})[:2] == (200, "default")
    assert _request(port, "/never")[:2] == (200, "default")  # disabled rule: policy 2 needs
    assert _request(port, "/js/x", {"Host": "internal.example"})[:2] == (200, "default")
    assert _request(port, "/api/v2/x", {"Cookie": "tier=gold-beta"})[:2] == (200, "api")
    assert _request(port, "/api/v2/x", {"Cookie": "tier=gold"})[:2] == (200, "default")
    assert _request(port, "/api/vX/x", {"Cookie": "tier=gold-beta"})[:2] == (200, "default")
    assert _request(port, "/data/list.json")[:2] == (200, "api")
    assert _request(port, "/data/list.jsonx")[:2] == (200, "default")
    status, _, location = _request(port, "/a/b?c=1", {"Host": "www.plain"})
    assert (status, location) == (301, "https://secure.example/a/b?c=1")
    status, _, location = _request(port, "/x", {"X-Move": "let's go"})
    assert (status, location) == (307, ODD_URL)


def test_prometheus_listener_serves_haproxy_metrics(haproxy: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    port = _free_port()
    lb = load_balancer(vip_address="127.0.0.1",
                       listeners=[listener(1, "PROMETHEUS", port)])
    haproxy(lb, port)
    status, body, _ = _request(port, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert "haproxy_process_uptime_seconds" in families
    fronts = {s.labels["proxy"] for s in families["haproxy_frontend_status"].samples}
    assert fronts == {uid("listener", 1)}
    assert _request(port, "/other")[0] == 404
