"""With the database unreachable the API answers 503 in Octavia's error format (not a 500), and
answers normally again as soon as the database is back, with no restart."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import create_engine


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def test_unreachable_database_is_a_503_and_recovery_needs_no_restart(api: Any) -> None:
    lb = api.create_lb(name="before")
    state = api.service.app.state
    reachable = state.engine
    away = create_engine(f"postgresql+psycopg://lbaas@127.0.0.1:{closed_port()}/lbaas",
                         pool_pre_ping=True, connect_args={"connect_timeout": 2})
    state.engine = away
    try:
        for method, path, body in (
                ("GET", "/v2/lbaas/loadbalancers", None),
                ("GET", f"/v2/lbaas/loadbalancers/{lb['id']}", None),
                ("PUT", f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}),
                ("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
                    "vip_subnet_id": api.subnet_id("public-subnet")}})):
            code, data = api.call(method, path, body)
            assert code == 503, (method, path, code, data)
            assert data["faultcode"] == "Server" and data["debuginfo"] is None, data
            assert "database" in data["faultstring"], data
    finally:
        state.engine = reachable
        away.dispose()
    code, data = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert code == 200 and data["loadbalancer"]["name"] == "before", data
