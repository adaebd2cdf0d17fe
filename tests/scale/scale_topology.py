"""Octavia's four services as real processes: ``lbaas api`` ×2, ``worker`` ×3,
``health-manager`` ×2, ``housekeeping`` ×1 on one database and one RabbitMQ.

Every process shares one settings file and one data directory, as on one machine; each role
process can be SIGKILLed and started again "as systemd would" (``Restart=always``,
``RestartSec=1``). With the real data plane the site uses its own networks — three random
10.24x.y.0/24 subnets under names unique to the run, as tests/dataplane does — and the health
managers listen on the management gateway, on ports of their own. ``close()`` stops every
process, runs ``lbaas teardown`` and removes the directory.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from scale_servers import free_port, wait_for
from sqlalchemy import Engine, create_engine, select

from lbaas.settings import HealthSettings, normalize_database_url
from lbaas.store import seed
from lbaas.store import tables as t
from net_prefixes import unused_prefixes

LBAAS = str(Path(sys.executable).parent / "lbaas")
ROLES = {"api": 2, "worker": 3, "health-manager": 2, "housekeeping": 1}
READY = {"worker": ": running", "housekeeping": ": running", "health-manager": "listening on"}
RESTART_SEC = 1.0
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")
HAS_CONTROLLER_LIST = "controller_ip_port_list" in HealthSettings.__dataclass_fields__



class Topology:
    def __init__(self, database_url: str, transport_url: str, *, data_plane: bool,
                 counts: dict[str, int] | None = None, extra_toml: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lbs", dir="/tmp"))  # short: socket paths
        self.data = self.root / "d"
        self.database_url = database_url
        self.data_plane = data_plane
        self.counts = counts or dict(ROLES)
        self.api_ports = [free_port() for _ in range(self.counts.get("api", 0))]
        self.hm_ports = [free_port() for _ in range(self.counts.get("health-manager", 0))]
        tag = f"s{os.getpid() % 1000}{random.randint(0, 999)}"
        self.topic = f"lbaas-{tag}"
        lines = ["[database]", f"connection = '{database_url}'", "[messaging]",
                 f"transport_url = '{transport_url}'", f"topic = '{self.topic}'",
                 "[controller]", f"drivers = '{'local' if data_plane else 'fake'}'",
                 "lease_seconds = 10.0"]
        self.nets = {kind: f"{tag}-{kind}" for kind in ("pub", "priv", "mgmt")}
        if data_plane:  # random /24s the host routes nowhere
            self.prefix = dict(zip(self.nets, unused_prefixes(3), strict=True))
            cidr, gw, first, last = "{p}.0/24", "{p}.1", "{p}.10", "{p}.200"
        else:  # the fake drivers touch no kernel: large subnets for many load balancers
            self.prefix = {"pub": "10.200", "priv": "10.201", "mgmt": "10.202"}
            cidr, gw, first, last = "{p}.0.0/16", "{p}.0.1", "{p}.0.10", "{p}.255.200"
        entries = [
            f"{{name = '{name}', subnet_name = '{name}-subnet', "
            f"cidr = '{cidr.format(p=p)}', gateway_ip = '{gw.format(p=p)}', "
            f"allocation_start = '{first.format(p=p)}', "
            f"allocation_end = '{last.format(p=p)}'}}"
            for kind, name in self.nets.items() for p in [self.prefix[kind]]]
        lines += ["[networking]", f"management_network = '{self.nets['mgmt']}'",
                  f"networks = [{', '.join(entries)}]", "[health]"]
        if data_plane and self.hm_ports:
            gateway = f"{self.prefix['mgmt']}.1"
            lines.append(f"bind_port = {self.hm_ports[0]}")
            if HAS_CONTROLLER_LIST:
                targets = ", ".join(f"'{gateway}:{port}'" for port in self.hm_ports)
                lines.append(f"controller_ip_port_list = [{targets}]")
        else:
            lines.append("bind_ip = '127.0.0.1'")
        self.config = self.root / "lbaas.toml"
        self.config.write_text("\n".join(lines) + "\n" + extra_toml)
        self.procs: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self.starts: dict[tuple[str, int], int] = {}
        self.kills: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()
        self.engine: Engine = create_engine(normalize_database_url(database_url),
                                            pool_pre_ping=True)
        self.http = httpx.Client(timeout=30)

    # processes -------------------------------------------------------------------------------
    def argv(self, role: str, i: int) -> list[str]:
        argv = [LBAAS, role, "--config", str(self.config), "--data-dir", str(self.data)]
        if role == "api":
            argv += ["--port", str(self.api_ports[i])]
        if role == "health-manager":
            argv += ["--port", str(self.hm_ports[i])]
        return argv

    def log_path(self, role: str, i: int) -> Path:
        return self.root / f"{role}-{i}.log"

    def log(self, role: str, i: int) -> str:
        try:
            return self.log_path(role, i).read_text(errors="replace")
        except OSError:
            return ""

    def all_logs(self) -> str:
        return "".join(self.log(role, i) for role, n in self.counts.items() for i in range(n))

    def start(self, role: str, i: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
        with self._lock:
            self.starts[(role, i)] = self.starts.get((role, i), 0) + 1
            with open(self.log_path(role, i), "ab") as log:
                log.write(f"\n--- start {self.starts[(role, i)]} ---\n".encode())
                self.procs[(role, i)] = subprocess.Popen(
                    self.argv(role, i), stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True)

    def ready(self, role: str, i: int) -> bool:
        proc = self.procs[(role, i)]
        assert proc.poll() is None, f"{role}-{i} exited:\n{self.log(role, i)[-3000:]}"
        if role == "api":
            try:
                return self.http.get(self.url(i) + "/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        marker = f"--- start {self.starts[(role, i)]} ---"
        return READY[role] in self.log(role, i).rpartition(marker)[2]

    def start_all(self, timeout: float = 180.0) -> None:
        for role, n in self.counts.items():
            for i in range(n):
                self.start(role, i)
        for role, n in self.counts.items():
            for i in range(n):
                wait_for(lambda r=role, k=i: self.ready(r, k), timeout, f"{role}-{i} ready")

    def kill(self, role: str, i: int) -> None:
        with self._lock:
            proc = self.procs[(role, i)]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            self.kills.append((time.monotonic(), role, i))

    def restart_later(self, role: str, i: int) -> threading.Timer:
        timer = threading.Timer(RESTART_SEC, self.start, (role, i))
        timer.start()
        return timer

    def pids(self) -> dict[tuple[str, int], int]:
        return {key: proc.pid for key, proc in self.procs.items()}

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs.values())

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def close(self) -> None:
        self.stop_all()
        self.http.close()
        self.engine.dispose()
        if self.data_plane:
            subprocess.run([LBAAS, "teardown", "--config", str(self.config), "--data-dir",
                            str(self.data)], capture_output=True, check=False)
        keep = os.environ.get("LBAAS_SCALE_KEEP_LOGS")  # a directory: where to copy the logs
        if keep:
            shutil.copytree(self.root, Path(keep) / self.root.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("d"))
        shutil.rmtree(self.root, ignore_errors=True)

    # API, with a client-side failover between the API processes --------------------------------
    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.api_ports[i]}"

    def request(self, method: str, path: str, body: Any = None, api: int | None = None,
                attempts: int = 20) -> tuple[int, Any]:
        """Through API ``api`` (else any), moving to the other one while one is down."""
        order = [api] if api is not None else random.sample(range(len(self.api_ports)),
                                                             len(self.api_ports))
        last: Exception | None = None
        for attempt in range(attempts):
            i = order[attempt % len(order)] if api is None else api
            try:
                resp = self.http.request(method, self.url(i) + path, json=body, timeout=30)
            except httpx.HTTPError as exc:
                last = exc
                time.sleep(0.25)
                continue
            return resp.status_code, (resp.json() if resp.content else None)
        raise AssertionError(f"{method} {path}: no API answered: {last!r}")

    def subnet_id(self, kind: str) -> str:
        return seed.subnet_id(f"{self.nets[kind]}-subnet")

    # what the database says ----------------------------------------------------------------------
    def load_balancers(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.load_balancer).where(
                t.load_balancer.c.provisioning_status != "DELETED")))

    def pending(self) -> list[str]:
        found = []
        with self.engine.connect() as conn:
            for table in (t.load_balancer, t.listener, t.pool, t.member, t.health_monitor,
                          t.l7policy, t.l7rule):
                found += [f"{table.name} {r.id} {r.provisioning_status}" for r in conn.execute(
                    select(table.c.id, table.c.provisioning_status)
                    .where(table.c.provisioning_status.in_(PENDING)))]
        return found

    def amphorae(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.amphora)))

    def wait_settled(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = self.pending()
            if not left:
                return
            assert time.monotonic() < deadline, \
                f"still pending after {timeout:.0f} s: {left[:10]}"
            time.sleep(0.5)
