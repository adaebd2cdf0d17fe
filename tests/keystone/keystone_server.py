"""A real Keystone for the RBAC tests: installed from PyPI into its own venv, run under gunicorn.

Keystone pins its own dependency tree (oslo.*, SQLAlchemy, Flask), so it lives in a venv of its
own (``.cache/keystone-venv`` by default, ``LBAAS_KEYSTONE_VENV`` to move it), built on first
use with pip. Each ``KeystoneServer`` has its own data directory: SQLite database, fernet and
credential keys, config and logs; ``stop()`` kills gunicorn and deletes it.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KEYSTONE_VERSION = "30.0.0"
REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "keystone"
DEFAULT_DOMAIN = "default"


def venv_dir() -> Path:
    path = os.environ.get("LBAAS_KEYSTONE_VENV") or REPO / ".cache" / "keystone-venv"
    return Path(path).resolve()


def _runnable(venv: Path) -> bool:
    # A venv restored from an archive can lose its execute bits; rebuild it then.
    try:
        return subprocess.run([venv / "bin" / "keystone-manage", "--version"],
                              capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def ensure_venv() -> Path:
    """Create the Keystone venv once (a marker file records a finished install)."""
    venv = venv_dir()
    marker = venv / f".installed-keystone-{KEYSTONE_VERSION}"
    if marker.exists() and _runnable(venv):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs must not build it at once
        if marker.exists() and _runnable(venv):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                        f"keystone=={KEYSTONE_VERSION}", "gunicorn"], check=True)
        marker.touch()
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class KeystoneServer:
    venv: Path
    data: Path
    admin_password: str = "keystone-admin-secret"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    ids: dict[str, str] = field(default_factory=dict)  # "project:A", "user:x", "role:y" -> id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def conf(self) -> Path:
        return self.data / "keystone.conf"

    # setup ---------------------------------------------------------------------------------
    def _manage(self, *commands: list[str]) -> None:
        """Run keystone-manage commands side by side (each spends seconds importing)."""
        base = [str(self.venv / "bin" / "keystone-manage"), "--config-file", str(self.conf)]
        procs = [subprocess.Popen([*base, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for args in commands]
        for args, proc in zip(commands, procs, strict=True):
            output = proc.communicate()[0]
            if proc.returncode != 0:
                raise RuntimeError(f"keystone-manage {args[0]} failed:\n{output}")

    def prepare(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        template = string.Template((TOOLS / "keystone.conf.in").read_text())
        self.conf.write_text(template.substitute(data=str(self.data)))
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        owner = ["--keystone-user", user, "--keystone-group", group]
        self._manage(["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner])
        self._manage(["bootstrap", "--bootstrap-password", self.admin_password,
                      "--bootstrap-admin-url", self.url, "--bootstrap-public-url", self.url,
                      "--bootstrap-internal-url", self.url, "--bootstrap-region-id", "RegionOne"])

    def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.conf)}
        env.pop("PYTHONPATH", None)
        # One sync worker: SQLite and the in-memory cache are per process anyway.
        with open(self.data / "gunicorn.log", "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "gunicorn"), "--workers", "1", "--worker-class", "sync",
                 "--timeout", "120", "--bind", f"127.0.0.1:{self.port}",
                 "--pythonpath", str(TOOLS), "keystone_wsgi:application"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"keystone exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"keystone did not answer in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        text = ""
        for name in ("gunicorn.log", "keystone.log"):
            path = self.data / name
            if path.exists():
                text += f"--- {name}\n" + path.read_text(errors="replace")[-4000:]
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)

    # identity API ------------------------------------------------------------------------------
    def token(self, user: str, password: str, project: str | None = None,
              system: bool = False) -> str:
        """A token for ``user`` scoped to ``project`` (a name), or to the system."""
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": DEFAULT_DOMAIN}, "password": password}}}}
        if system:
            auth["scope"] = {"system": {"all": True}}
        elif project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": DEFAULT_DOMAIN}}}
        resp = httpx.post(f"{self.url}/auth/tokens", json={"auth": auth}, timeout=30)
        if resp.status_code != 201:
            raise RuntimeError(f"token for {user}: {resp.status_code} {resp.text}")
        return resp.headers["X-Subject-Token"]

    def admin_client(self) -> httpx.Client:
        token = self.token("admin", self.admin_password, system=True)
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": token}, timeout=30)

    def provision(self, projects: list[str], users: dict[str, list[tuple[str, str]]],
                  password: str) -> None:
        """Create projects, roles and users, and grant each user its (project, role) pairs."""
        with self.admin_client() as kc:
            for name in ["service", *projects]:
                self.ids[f"project:{name}"] = _ensure(kc, "projects", name, {
                    "name": name, "domain_id": DEFAULT_DOMAIN})
            for role in sorted({r for grants in users.values() for _, r in grants}):
                self.ids[f"role:{role}"] = _ensure(kc, "roles", role, {"name": role})
            for user, grants in users.items():
                uid = _ensure(kc, "users", user, {"name": user, "domain_id": DEFAULT_DOMAIN,
                                                  "password": password})
                self.ids[f"user:{user}"] = uid
                for project, role in grants:
                    pid = self.ids[f"project:{project}"]
                    rid = self.ids[f"role:{role}"]
                    resp = kc.put(f"/projects/{pid}/users/{uid}/roles/{rid}")
                    assert resp.status_code == 204, resp.text


def _ensure(kc: httpx.Client, collection: str, name: str, body: dict[str, Any]) -> str:
    resp = kc.get(f"/{collection}", params={"name": name})
    resp.raise_for_status()
    found = resp.json()[collection]
    if found:
        return str(found[0]["id"])
    resp = kc.post(f"/{collection}", json={collection[:-1]: body})
    assert resp.status_code == 201, resp.text
    return str(resp.json()[collection[:-1]]["id"])
