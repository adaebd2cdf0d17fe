"""A real ``lbaas serve`` on its own networks that tests can SIGKILL, plus the invariants a
restarted server must reach: no PENDING_*, amphora namespaces = live amphora rows, no strays.

Networks are three random /24s in 10.240.0.0/13 under per-run names (so their bridges are this
run's own, never the default ones other servers share); the data dir is a short
``tempfile.mkdtemp(prefix="lbc")``. ``close()`` stops the server, runs ``lbaas teardown`` and
removes the directory.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from lbaas.store.seed import subnet_id

LBAAS = str(Path(sys.executable).parent / "lbaas")
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CrashServer:
    def __init__(self, extra_toml: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lbc"))
        tag = self.dir.name[-6:].lower()
        blocks = random.sample(range(0, 8 * 256), 3)
        nets = {}
        for kind, block in zip(("pub", "priv", "mgmt"), blocks, strict=True):
            prefix = f"10.{240 + block // 256}.{block % 256}"
            nets[kind] = (f"lbc{tag}-{kind}", prefix)
        self.public_subnet = subnet_id(f"{nets['pub'][0]}-subnet")
        self.private_prefix = nets["priv"][1]
        self.private_subnet_name = f"{nets['priv'][0]}-subnet"
        self.config = self.dir / "lbaas.toml"
        # A lease outliving the settle timeout: only a restarted server that takes its own
        # leases back at once can settle in time.
        lines = ["[controller]", "resync_interval = 1.0", "lease_seconds = 300.0", "",
                 "[networking]", f"management_network = '{nets['mgmt'][0]}'"]
        for name, prefix in nets.values():
            lines += ["[[networking.networks]]", f"name = '{name}'",
                      f"subnet_name = '{name}-subnet'", f"cidr = '{prefix}.0/24'",
                      f"gateway_ip = '{prefix}.1'", f"allocation_start = '{prefix}.10'",
                      f"allocation_end = '{prefix}.250'"]
        self.config.write_text("\n".join(lines) + "\n" + extra_toml)
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.starts = 0

    # process -----------------------------------------------------------------------------
    def argv(self, *cmd: str) -> list[str]:
        return [LBAAS, *cmd, "--config", str(self.config), "--data-dir", str(self.data)]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
        self.starts += 1
        with open(self.dir / "server.log", "ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            self.proc = subprocess.Popen(self.argv("serve", "--port", str(self.port)),
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"lbaas serve exited:\n{self.log_tail()}"
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"lbaas serve did not answer:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def recoveries(self) -> list[str]:
        """The server's "crash recovery:" log lines (what restarts found and repaired)."""
        try:
            text = (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if "crash recovery:" in line]

    def close(self) -> None:
        for line in self.recoveries():
            print(line)
        self.http.close()
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        subprocess.run(self.argv("teardown"), capture_output=True, check=False)
        keep = os.environ.get("LBAAS_CRASH_KEEP_LOG")  # a path: where to copy the server log
        if keep:
            shutil.copy(self.dir / "server.log", keep)
        shutil.rmtree(self.dir, ignore_errors=True)

    # API -----------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = self.http.request(method, "/v2/lbaas" + path, json=body)
        return resp.status_code, (resp.json() if resp.content else None)

    def create_lb(self, name: str) -> str | None:
        """POST a load balancer; None when the server died under the request."""
        try:
            code, body = self.api("POST", "/loadbalancers", {"loadbalancer": {
                "name": name, "vip_subnet_id": self.public_subnet}})
        except httpx.HTTPError:
            return None
        assert code == 201, body
        return str(body["loadbalancer"]["id"])

    def load_balancers(self) -> list[dict[str, Any]]:
        code, body = self.api("GET", "/loadbalancers")
        assert code == 200, body
        return list(body["loadbalancers"])

    def wait_settled(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Every load balancer and child ACTIVE or ERROR (none PENDING_*), or fail."""
        deadline = time.monotonic() + timeout
        while True:
            lbs = self.load_balancers()
            pending = [lb["id"] for lb in lbs if lb["provisioning_status"] in PENDING]
            pending += [f"{kind} {row['id']}" for kind in ("listeners", "pools")
                        for row in self.api("GET", f"/{kind}")[1][kind]
                        if row["provisioning_status"] in PENDING]
            if not pending:
                return lbs
            assert time.monotonic() < deadline, \
                f"still pending after {timeout:.0f} s: {pending}\n{self.log_tail()}"
            time.sleep(0.5)

    def wait_gone(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.load_balancers():
            assert time.monotonic() < deadline, f"not deleted:\n{self.log_tail()}"
            time.sleep(0.5)

    # what exists ---------------------------------------------------------------------------
    def amphora_rows(self) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.data / 'lbaas.sqlite'}?mode=ro", uri=True,
                               timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute("SELECT * FROM amphora"))
        finally:
            conn.close()

    def namespaces(self) -> set[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        present = {line.split()[0] for line in out.splitlines() if line.strip()}
        homes = self.data / "amphorae"
        made = {p.name for p in homes.iterdir()} if homes.is_dir() else set()
        ours = made | {"amp-" + r["id"].replace("-", "")[:12] for r in self.amphora_rows()}
        ours |= {"ampd-" + ns.removeprefix("amp-") for ns in ours}  # their data namespaces
        return present & ours

    def processes(self) -> dict[str, set[str]]:
        """Amphora namespace -> kinds ("agent", "haproxy") running from this data dir."""
        found: dict[str, set[str]] = {}
        homes = str(self.data / "amphorae") + "/"
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            text = " ".join(argv)
            match = re.search(re.escape(homes) + r"(amp-[0-9a-f]+)/", text)
            if match is None:
                continue
            kind = "agent" if "lbaas.agent" in text else "haproxy" if "haproxy" in argv[0] \
                else text[:60]
            found.setdefault(match.group(1), set()).add(kind)
        return found


def check_invariants(server: CrashServer) -> list[dict[str, Any]]:
    """Wait until settled, then assert namespaces and processes match the live amphora rows."""
    lbs = server.wait_settled()
    rows = server.amphora_rows()
    assert not [r["id"] for r in rows if r["status"] not in ("ALLOCATED", "DELETED")], \
        f"amphora rows neither ALLOCATED nor DELETED: {[dict(r) for r in rows]}"
    live = {r["compute_id"] for r in rows if r["status"] == "ALLOCATED"}
    spaces = live | {"ampd-" + ns.removeprefix("amp-") for ns in live}  # both of each
    assert server.namespaces() == spaces, (server.namespaces(), spaces)
    procs = server.processes()
    stray = {ns: kinds for ns, kinds in procs.items() if ns not in live}
    assert not stray, f"processes of amphorae that do not exist: {stray}"
    without_agent = [ns for ns in live if "agent" not in procs.get(ns, set())]
    assert not without_agent, f"live amphorae without an agent: {without_agent}"
    by_lb = {lb["id"]: [r for r in rows if r["load_balancer_id"] == lb["id"]
                        and r["status"] == "ALLOCATED"] for lb in lbs}
    for lb in lbs:
        if lb["provisioning_status"] == "ACTIVE":
            assert len(by_lb[lb["id"]]) == 1, f"{lb['id']}: {by_lb[lb['id']]}"
    return lbs
