"""Shared fixtures: a real database (SQLite by default; PostgreSQL or MariaDB through
``LBAAS_TEST_DATABASE``) and the all-in-one service driven over HTTP through its ASGI app."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from host_uplink import uplink_state
from lbaas.main.service import Service
from lbaas.store import db
from service_kit import _wipe, make_service

SERVER_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{name}",
}


def _server_database(kind: str) -> tuple[str, Any]:
    name = f"lbaas_test_{uuid.uuid4().hex[:8]}"
    if kind == "postgresql":
        admin = create_engine(SERVER_URLS[kind].format(name="postgres"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        admin = create_engine(SERVER_URLS[kind].format(name="mysql"))
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))

        def drop() -> None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            admin.dispose()
    return SERVER_URLS[kind].format(name=name), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kind = os.environ.get("LBAAS_TEST_DATABASE", "sqlite")
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("db") / "lbaas.sqlite"
        url = f"sqlite:///{path}"
        db.upgrade(db.make_engine(url))
        yield url
        return
    url, drop = _server_database(kind)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    drop()


class Api:
    """A thin client: JSON in, (status, body) out, plus helpers to wait for statuses."""

    def __init__(self, client: TestClient, service: Service) -> None:
        self.client = client
        self.service = service
        self.headers: dict[str, str] = {}

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kw.pop("headers", {})}
        resp = self.client.request(method, path, json=body, headers=headers, **kw)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = resp.text
        return resp.status_code, data

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("DELETE", path, **kw)

    def wait_lb(self, lb_id: str, status: str = "ACTIVE", timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            code, body = self.get(f"/v2/lbaas/loadbalancers/{lb_id}")
            if status == "DELETED" and code == 404:
                return {}
            if code == 200 and body["loadbalancer"]["provisioning_status"] == status:
                return body["loadbalancer"]
            if time.monotonic() > deadline:
                raise AssertionError(f"load balancer {lb_id} not {status}: {code} {body}")
            time.sleep(0.01)

    def create_lb(self, **fields: Any) -> dict[str, Any]:
        body = {"vip_subnet_id": self.subnet_id("public-subnet"), **fields}
        code, data = self.post("/v2/lbaas/loadbalancers", {"loadbalancer": body})
        assert code == 201, data
        return self.wait_lb(data["loadbalancer"]["id"])

    def subnet_id(self, name: str) -> str:
        from lbaas.store.seed import subnet_id

        return subnet_id(name)

    def network_id(self, name: str) -> str:
        from lbaas.store.seed import network_id

        return network_id(name)


@pytest.fixture()
def service_factory(database_url: str, tmp_path: Any) -> Iterator[Any]:
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> Api:
        _wipe(database_url)
        service = make_service(database_url, tmp_path, **overrides)
        client = TestClient(service.app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Api(client, service)

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def api(service_factory: Any) -> Api:
    return service_factory()


@pytest.fixture(autouse=True, scope="module")
def host_uplink_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the module after which the host's addresses, uplink or default routes changed."""
    before = uplink_state()
    yield
    after = uplink_state()
    lost = sorted(before - after)
    assert not lost, (f"{request.module.__name__} changed how the host reaches the world: lost "
                      f"{lost}, now {sorted(after)}")
