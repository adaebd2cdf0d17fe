"""Project lookups in noauth mode (issue 9 item 10): the generated clouds.yaml authenticates
against the server's own Identity v3 subset, so the real ``openstack`` CLI resolves project
names (``quota show admin``, ``quota set ... admin``) and openstacksdk gets a project id."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from lbaas.main.clouds import cloud_config
from service_kit import make_service

OPENSTACK = str(Path(sys.executable).parent / "openstack")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def cli(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """The service on a real port (uvicorn in a thread) and a runner for the openstack CLI."""
    from service_kit import _wipe

    _wipe(database_url)
    port = free_port()
    service = make_service(database_url, tmp_path, api={"port": port})
    server = uvicorn.Server(uvicorn.Config(service.app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"lbaas": cloud_config(service.settings)}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="lbaas", HOME=str(tmp_path))

    def run(*args: str) -> str:
        proc = subprocess.run([OPENSTACK, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"openstack {' '.join(args)}:\n{proc.stderr}"
        return proc.stdout

    run.service = service  # type: ignore[attr-defined]
    yield run
    server.should_exit = True
    thread.join(timeout=30)


def test_cli_resolves_projects_by_name_in_noauth_mode(cli: Any) -> None:
    out = cli("loadbalancer", "quota", "set", "--loadbalancer", "5", "admin", "-f", "value",
              "-c", "load_balancer")
    assert out.strip() == "5"
    assert cli("loadbalancer", "quota", "show", "admin", "-f", "value",
               "-c", "load_balancer").strip() == "5"
    # any name is a project (its id is its name), as noauth makes every caller admin
    assert cli("project", "show", "team-blue", "-f", "value", "-c", "id").strip() == "team-blue"


def test_identity_subset(api: Any) -> None:
    code, body = api.post("/identity/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"name": "Default"}, "password": "x"}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
    assert code == 201 and body["token"]["project"]["id"] == "demo"
    types = {s["type"] for s in body["token"]["catalog"]}
    assert types == {"identity", "load-balancer", "network", "key-manager"}
    resp = api.client.post("/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}},
        "scope": {"system": {"all": True}}}})
    token = resp.headers["x-subject-token"]
    resp = api.client.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200 and resp.json()["token"]["system"] == {"all": True}
    assert api.get("/identity/v3/projects/p1")[1]["project"]["name"] == "p1"
    assert [p["id"] for p in api.get("/identity/v3/projects?name=x")[1]["projects"]] == ["x"]


def test_identity_is_not_served_with_keystone(service_factory: Any) -> None:
    api = service_factory(api={"auth_strategy": "keystone"})
    assert api.get("/identity/v3")[0] == 404
