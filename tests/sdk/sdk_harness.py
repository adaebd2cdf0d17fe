"""Harness for openstacksdk's own functional tests against a live ``lbaas serve`` (fake drivers).

Their base class (``openstack.tests.functional.base``) reads the clouds ``devstack`` (a member
of project demo), ``devstack-alt`` (alt_demo), ``devstack-admin`` and ``devstack-system-admin``
from clouds.yaml at import time, so they run in a child pytest with ``OS_CLIENT_CONFIG_FILE``
pointing at a clouds.yaml written here from ``lbaas.main.clouds.cloud_config`` (what ``lbaas
clouds-yaml`` prints). Two deployments: ``noauth`` (the server's own identity subset issues the
tokens) and ``keystone`` (the real Keystone of tests/keystone, with devstack's users). Servers are
started per deployment and module, on a free port with their own data directory and SQLite;
everything is stopped and removed by the ids recorded here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "keystone"))
sys.path.insert(0, str(Path(__file__).parents[1] / "dataplane"))

from e2e_helpers import _stop, _wait_up  # the end-to-end tests' server start and stop
from keystone_server import KeystoneServer, ensure_venv, free_port

from lbaas.main.clouds import cloud_config
from lbaas.settings import load_settings

BIN = Path(sys.executable).parent
LBAAS = str(BIN / "lbaas")
PASSWORD = "devstack-password"
# cloud name -> (user, project); None: the bootstrap admin, system scoped
DEVSTACK = {"devstack": ("demo", "demo"), "devstack-alt": ("alt_demo", "alt_demo"),
            "devstack-admin": ("admin", "admin"), "devstack-system-admin": ("admin", None)}
# How long one of the SDK's wait_for_* may take (its default is 300 s per wait).
WAIT_SECONDS = "60"


@dataclass
class Server:
    url: str
    config: dict[str, Any]
    proc: subprocess.Popen[bytes]
    root: Path


def _toml(data: dict[str, Any]) -> str:
    """Sections of scalars as TOML (a JSON string is a TOML basic string)."""
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else (
                json.dumps(value) if isinstance(value, str) else str(value))
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def serve() -> Iterator[Any]:
    """``serve(**sections)``: a live ``lbaas serve`` with fake drivers; all stopped at the end."""
    servers: list[Server] = []

    def start(**sections: dict[str, Any]) -> Server:
        root = Path(tempfile.mkdtemp(prefix="lbaas-sdk-"))
        port = free_port()
        # fake_delete_seconds: test_amphora_failover reads the amphora right after asking
        # for its failover; upstream's flow removes it last, the instant fake at once
        config = {"controller": {"drivers": "fake", "fake_delete_seconds": 2.0},
                  "health": {"enabled": False}, **sections}
        config["api"] = {**config.get("api", {}), "port": port, "host": "127.0.0.1"}
        (root / "lbaas.toml").write_text(_toml(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
        log = root / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [LBAAS, "serve", "--config", str(root / "lbaas.toml"),
                 "--data-dir", str(root / "data")],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        server = Server(f"http://127.0.0.1:{port}", config, proc, root)
        servers.append(server)
        _wait_up(server.url + "/", proc, log, timeout=60)
        return server

    yield start
    for server in servers:
        _stop(server.proc)
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    """A real Keystone with devstack's projects and users (and lbaas's service user)."""
    server = KeystoneServer(ensure_venv(), tmp_path_factory.mktemp("keystone"))
    try:
        server.prepare()
        server.start()
        server.provision(["demo", "alt_demo"], {
            "demo": [("demo", "member")], "alt_demo": [("alt_demo", "member")],
            "octavia": [("service", "service")]}, PASSWORD)
        yield server
    finally:
        server.stop()


def write_clouds(server: Server, path: Path, admin_password: str = "admin") -> Path:
    """devstack's four clouds for ``server``, as ``lbaas clouds-yaml`` would describe them."""
    settings = load_settings(overrides={k: v for k, v in server.config.items()
                                        if k in ("api", "keystone")}, environ={})
    clouds = {}
    for name, (user, project) in DEVSTACK.items():
        password = admin_password if user == "admin" else PASSWORD
        clouds[name] = cloud_config(settings, username=user, password=password,
                                    project_name=project, system_scope=project is None)
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    return path


@dataclass
class Outcome:
    passed: list[str]
    failed: dict[str, str]  # test id -> failure text
    skipped: dict[str, str]
    output: str


def run_functional(clouds: Path, modules: list[str], workdir: Path,
                   timeout: float = 1800) -> Outcome:
    """Run openstacksdk's functional test ``modules`` in a child pytest; one outcome per test."""
    report = workdir / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "OPENSTACKSDK_"))}
    env.update(OS_CLIENT_CONFIG_FILE=str(clouds), HOME=str(workdir),
               OPENSTACKSDK_FUNC_TEST_TIMEOUT=WAIT_SECONDS,
               OPENSTACKSDK_FUNC_TEST_TIMEOUT_LOAD_BALANCER=WAIT_SECONDS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         f"--junitxml={report}", "--pyargs", *modules],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    outcome = Outcome([], {}, {}, proc.stdout[-20000:] + proc.stderr[-5000:])
    if not report.exists():
        raise AssertionError(f"no report from the functional tests:\n{outcome.output}")
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{(case.get('classname') or '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            outcome.failed[test_id] = (problem.get("message") or "") + "\n" + (problem.text or "")
        elif skipped is not None:
            outcome.skipped[test_id] = skipped.get("message") or ""
        else:
            outcome.passed.append(test_id)
    return outcome
