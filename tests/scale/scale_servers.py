"""The servers the scale tests own: a private RabbitMQ and a private PostgreSQL they may stop.

The machine's shared RabbitMQ (5672), PostgreSQL (5432) and MariaDB (3306) must stay up for
everyone else, so a test that stops a server starts its own: ``rabbitmq-server`` with its own
node name, ports, data directory and cookie (HOME); PostgreSQL from ``initdb`` into a temporary
directory on its own port. Databases on the shared servers get a fresh name per test and are
dropped afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.2)


class PrivateRabbit:
    """A RabbitMQ node of our own: ``stop()`` and ``start()`` keep its data directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lbrmq"))
        self.dir.chmod(0o755)
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"lbtest{random.randint(0, 10**6)}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        d = str(self.dir)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d,
                "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": f"{d}/mnesia", "RABBITMQ_LOG_BASE": f"{d}/log",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
                "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq.conf",
                "RABBITMQ_CONF_ENV_FILE": f"{d}/rabbitmq-env.conf",
                "RABBITMQ_PID_FILE": f"{d}/pid", "ERL_EPMD_ADDRESS": "127.0.0.1"}

    def start(self, timeout: float = 90.0) -> None:
        with open(self.dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        proc = self.proc
        wait_for(lambda: proc.poll() is None and port_open(self.port), timeout,
                 f"RabbitMQ on {self.port} (log {self.dir}/server.log)")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        wait_for(lambda: not port_open(self.port), 30, "RabbitMQ to close its port")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name}")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb into a temporary directory, its own port)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lbpg"))
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(_pg_bin("initdb"), "-D", f"{self.dir}/data", "-U", "postgres",
                          "--auth=trust", "-E", "UTF8")

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       capture_output=True, cwd=self.dir)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=400")
        self._as_postgres(_pg_bin("pg_ctl"), "-D", f"{self.dir}/data", "-l",
                          f"{self.dir}/server.log", "-o", options, "-w", "start")

    def stop(self) -> None:
        self._as_postgres(_pg_bin("pg_ctl"), "-D", f"{self.dir}/data", "-m", "fast", "-w",
                          "stop")

    def create_database(self) -> str:
        name = f"lbaas_{uuid.uuid4().hex[:8]}"
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_database(kind: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the machine's PostgreSQL or MariaDB, as octavia.conf would name it
    (``postgresql://`` and ``mysql+pymysql://`` without options), and its dropper."""
    name = f"lbaas_scale_{uuid.uuid4().hex[:8]}"
    if kind == "postgresql":
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        admin = create_engine("mysql+pymysql://root@127.0.0.1:3306/mysql",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        url = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
        drop = f"DROP DATABASE IF EXISTS `{name}`"

    def dropper() -> None:
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()

    return url, dropper
