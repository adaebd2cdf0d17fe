"""The renderer reads the aggregate exactly as load_aggregate builds it from API-made rows.

Objects are created through the public API (fake drivers), read back with load_aggregate and
rendered; the result must pass ``haproxy -c`` and show what the client asked for. This catches
drift between the store's column types (JSON, FLOAT, nullable booleans) and the renderer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lbaas.controller.aggregate import load_aggregate
from lbaas.render import RenderOptions, render_bundle

V2 = "/v2/lbaas"


def _post(api: Any, lb_id: str, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    code, data = api.post(f"{V2}/{path}", {kind: body})
    assert code == 201, data
    api.wait_lb(lb_id)
    return dict(data[kind])


def test_api_made_load_balancer_renders_and_passes_haproxy_check(api: Any,
                                                                 tmp_path: Path) -> None:
    lb = api.create_lb(name="web")
    lid = lb["id"]
    http = _post(api, lid, "listeners", "listener", {
        "loadbalancer_id": lid, "protocol": "HTTP", "protocol_port": 80,
        "connection_limit": 500, "insert_headers": {"X-Forwarded-For": "true",
                                                    "X-Real-IP": "true"},
        "allowed_cidrs": ["192.0.2.0/24"], "timeout_member_connect": 1234})
    web = _post(api, lid, "pools", "pool", {
        "listener_id": http["id"], "protocol": "HTTP", "lb_algorithm": "LEAST_CONNECTIONS",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": "sess'#$id"}})
    up = _post(api, lid, f"pools/{web['id']}/members", "member", {
        "address": "10.0.0.11", "protocol_port": 8080, "weight": 5, "backup": True})
    down = _post(api, lid, f"pools/{web['id']}/members", "member", {
        "address": "10.0.0.12", "protocol_port": 8080, "admin_state_up": False,
        "monitor_port": 9000})
    _post(api, lid, "healthmonitors", "healthmonitor", {
        "pool_id": web["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2,
        "url_path": "/health'z", "expected_codes": "200-204", "http_version": 1.1,
        "domain_name": "app.example.com"})
    tcp = _post(api, lid, "listeners", "listener", {
        "loadbalancer_id": lid, "protocol": "TCP", "protocol_port": 5432})
    db = _post(api, lid, "pools", "pool", {
        "listener_id": tcp["id"], "protocol": "TCP", "lb_algorithm": "SOURCE_IP",
        "session_persistence": {"type": "SOURCE_IP"}})
    _post(api, lid, f"pools/{db['id']}/members", "member",
          {"address": "10.0.0.21", "protocol_port": 5432})
    _post(api, lid, "healthmonitors", "healthmonitor", {
        "pool_id": db["id"], "type": "TLS-HELLO", "delay": 10, "timeout": 5, "max_retries": 3})

    with api.service.engine.connect() as conn:
        aggregate = load_aggregate(conn, lid)
    text = render_bundle(aggregate, RenderOptions()).files["haproxy.cfg"]
    lines = [line.strip() for line in text.splitlines()]

    vip = aggregate.vip_address
    assert f"frontend {http['id']}" in lines and f"bind {vip}:80" in lines
    assert "maxconn 500" in lines and "option forwardfor" in lines
    assert "http-request set-header X-Real-IP %[src]" in lines
    assert "acl lbaas-allowed-cidrs src 192.0.2.0/24" in lines
    assert "tcp-request connection reject if !lbaas-allowed-cidrs" in lines
    assert f"default_backend {web['id']}" in lines
    assert "timeout connect 1234ms" in lines and "balance leastconn" in lines
    assert "stick match 'req.cook(sess\\'\\''#$id)'" in lines
    assert ("http-check send meth GET uri '/health'\\''z' ver HTTP/1.1 "
            "hdr Host 'app.example.com'") in lines
    assert "http-check expect status 200-204" in lines
    assert (f"server {up['id']} 10.0.0.11:8080 weight 5 backup "
            "check inter 5s fall 3 rise 2") in lines
    assert (f"server {down['id']} 10.0.0.12:8080 weight 1 disabled "
            "check inter 5s fall 3 rise 2 port 9000") in lines
    assert "balance source" in lines and "stick on src" in lines
    assert any(x.endswith("check inter 10s fall 3 rise 3 check-ssl verify none") for x in lines)

    if shutil.which("haproxy"):
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(text)
        result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                                text=True, env={**os.environ, "LBAAS_RUN_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
