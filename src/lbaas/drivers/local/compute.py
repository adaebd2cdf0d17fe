"""Local compute driver: an amphora is two network namespaces running the amphora agent.

As upstream's amphora keeps the management network apart from tenant networks with a namespace
(its ``amphora-haproxy``), ours has two: ``amp-<12 hex>`` (the compute_id) holds the agent and
the management leg, ``ampd-<12 hex>`` the VIP and member legs, where the agent runs HAProxy,
keepalived and nftables (``--data-netns``). The data namespace gets ``prohibit`` routes for the
management subnet and the health manager's address, so that even a member aimed there (whatever
the API let through) is refused on the spot instead of being routed via the VIP's gateway.

The agent runs detached (own session, log and pid file under ``base_dir/<compute_id>``) so it
outlives a controller restart; ``delete_amphora`` ends every process in both namespaces,
whoever started it, before deleting them. The real agent is started confined (``confine.py``):
its own mount and PID namespaces, where the data directory shows only the amphora's own home,
/run/netns only its two namespaces and the rest of the host is read-only; a reduced capability
bounding set and a seccomp filter (``syscall_filter.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from lbaas.drivers.base import AmphoraSpec, ComputeInfo, DriverError
from lbaas.drivers.local import names
from lbaas.drivers.local import netlink as nl
from lbaas.drivers.local.network import LocalNetwork

AGENT_PORT = 9443
# HAProxy refuses unix socket paths over 97 bytes; the agent keeps its runtime socket here.
AGENT_SOCKET = "agent/run/haproxy.sock"
MAX_SOCKET_PATH = 97
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

DEFAULT_AGENT_ARGV = [
    sys.executable, "-m", "lbaas.agent", "--base-dir", "{agent_dir}", "--listen", "{listen}",
    "--ca-file", "{ca_file}", "--cert-file", "{cert_file}", "--key-file", "{key_file}",
    "--amphora-id", "{amphora_id}", "--data-netns", "{data_netns}",
]


def _listen(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else \
        f"{address}:{port}"


def _blocked(spec: AmphoraSpec) -> list[str]:
    """What the data namespace must never reach: the management subnet and the health
    manager's address(es)."""
    assert spec.mgmt is not None
    blocked = [spec.mgmt.subnet.cidr]
    for target in spec.credentials.health_targets if spec.credentials else ():
        host = target.rsplit(":", 1)[0].strip("[]")
        address = ipaddress.ip_address(host)
        blocked.append(f"{address}/{address.max_prefixlen}")
    return blocked


async def _nonlocal_bind(ns: str) -> tuple[int, str, str]:
    return await nl.run(nl.IP, "netns", "exec", ns, "sysctl", "-qw",
                        "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1", check=False)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_bytes()[-limit:].decode(errors="replace")
    except OSError:
        return ""


def _listening_in(home: Path, port: int) -> bool:
    """Whether the agent (pid file in ``home``) has a TCP socket listening on ``port`` in its
    namespace (``/proc/<pid>/net/tcp*`` lists the sockets of the pid's network namespace)."""
    try:
        pid = int((home / "agent.pid").read_text())
    except (OSError, ValueError):
        return False
    wanted = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


class LocalCompute:
    def __init__(self, base_dir: Path, network: LocalNetwork,
                 agent_argv: list[str] | None = None, reach_agent: bool = True,
                 confine: bool | None = None, hide: tuple[Path, ...] = ()) -> None:
        """``agent_argv`` is a template; ``{mgmt_ip}``, ``{port}``, ``{listen}``,
        ``{agent_dir}``, ``{ca_file}``, ``{cert_file}``, ``{key_file}``, ``{amphora_id}``,
        ``{data_netns}`` are filled in per amphora. ``reach_agent``: this process can connect
        to the management network (False on an amphora host, whose bridges hold no address:
        the agent's listening socket is then looked for in its namespace's socket table).
        ``confine`` (default: only for the real agent): start the agent through
        ``confine.py``, which hides ``base_dir``'s parent (the data directory and its secrets)
        and ``hide`` (e.g. a separate shared directory with the CA key) but for the amphora's
        own home, hides the other namespaces and processes, makes the rest of the host's
        files read-only and trims its capabilities."""
        self.base_dir = Path(base_dir).absolute()
        longest = self.base_dir / names.amphora_netns(str(uuid.UUID(int=0))) / AGENT_SOCKET
        if len(str(longest)) > MAX_SOCKET_PATH:
            raise ValueError(f"base_dir {self.base_dir} is too long: HAProxy's runtime socket "
                             f"{longest} would exceed {MAX_SOCKET_PATH} characters")
        self.network = network
        self.agent_argv = agent_argv or DEFAULT_AGENT_ARGV
        # heartbeat options are ours to add only to the real agent's command line
        self.heartbeat_args = agent_argv is None
        self.confine = agent_argv is None if confine is None else confine
        self.hide = (self.base_dir.parent, *(Path(h).absolute() for h in hide))
        self.reach_agent = reach_agent
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def amphora_dir(self, amphora_id: str) -> Path:
        # named after the namespace, not the 36-character id: HAProxy's socket path limit
        return self.base_dir / names.amphora_netns(amphora_id)

    async def create_amphora(self, spec: AmphoraSpec) -> ComputeInfo:
        if spec.mgmt is None or spec.credentials is None:
            raise DriverError("the local compute driver needs spec.mgmt and spec.credentials")
        ns = names.amphora_netns(spec.amphora_id)
        data_ns = names.data_netns_of(ns)
        mgmt_ip = spec.mgmt.address
        info = ComputeInfo(compute_id=ns, lb_network_ip=mgmt_ip)
        home = self.amphora_dir(spec.amphora_id)
        home.mkdir(parents=True, exist_ok=True)  # first: the orphan sweep finds a half build
        steps: list[asyncio.Future[Any]] = []
        try:
            fresh, _ = await asyncio.gather(self._make_netns(ns), self._make_netns(data_ns))
            # The data namespace is prepared while the agent starts (it needs only to exist).
            steps.append(asyncio.ensure_future(self._prepare_data_netns(data_ns, spec)))
            # The agent binds its management address before the leg carries it, so its start
            # overlaps the leg's.
            rc, _, _ = await _nonlocal_bind(ns)
            early = rc == 0
            if early:
                await self._start_unless_alive(spec, ns, mgmt_ip, home)
            await self.network.plug_leg(ns, names.MGMT_LEG, spec.mgmt.subnet, [mgmt_ip],
                                        then=("link set dev lo up",), fresh_ns=fresh)
            if not early:
                await self._start_unless_alive(spec, ns, mgmt_ip, home)
            # The VIP leg is plugged while the agent starts (the controller's plug_vip then
            # finds it done).
            steps.append(asyncio.ensure_future(self._wait_listening(ns, mgmt_ip, home)))
            if spec.vip is not None:
                steps.append(asyncio.ensure_future(self.network.plug_vip(spec, info)))
            await asyncio.gather(*steps)
        except BaseException:
            for step in steps:
                step.cancel()
            await asyncio.gather(*steps, return_exceptions=True)
            # Leave nothing behind: the controller never learns a compute_id it could delete.
            await asyncio.shield(self._rollback(ns))
            raise
        return info

    async def _prepare_data_netns(self, data_ns: str, spec: AmphoraSpec) -> None:
        # Backup amphorae's HAProxy binds the VIP before keepalived gives it to them.
        await asyncio.gather(_nonlocal_bind(data_ns),
                             self.network.guard_data_netns(data_ns, _blocked(spec)))

    @staticmethod
    async def _make_netns(name: str) -> bool:
        """Create ``name`` unless it exists; True if made now."""
        if await nl.netns_exists(name):
            return False
        rc, _, err = await nl.netns_add(name, check=False)
        if rc != 0 and not await nl.netns_exists(name):  # (a concurrent retry made it)
            raise DriverError(f"cannot create namespace {name}: {err.strip()}")
        return rc == 0

    async def _start_unless_alive(self, spec: AmphoraSpec, ns: str, mgmt_ip: str,
                                  home: Path) -> None:
        creds = spec.credentials
        assert creds is not None
        tls = home / "tls"
        tls.mkdir(parents=True, exist_ok=True, mode=0o700)
        (home / "agent").mkdir(exist_ok=True)
        for name, text in (("ca.pem", creds.ca_pem), ("cert.pem", creds.cert_pem),
                           ("key.pem", creds.key_pem),
                           ("heartbeat.key", creds.heartbeat_key + "\n")):
            path = tls / name
            mode = 0o600 if name.endswith(".key") or name == "key.pem" else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        if not await self._agent_alive(ns, home):
            self._start_agent(spec.amphora_id, ns, mgmt_ip, home, creds.health_targets,
                              creds.heartbeat_interval)

    async def _rollback(self, ns: str) -> None:
        try:
            await self.delete_amphora(ns)
        except Exception:  # the original error matters more
            pass

    async def _agent_alive(self, ns: str, home: Path) -> bool:
        try:
            pid = int((home / "agent.pid").read_text())
        except (OSError, ValueError):
            return False
        child = self._children.get(ns)
        if child is not None and child.poll() is not None:
            return False
        return pid in await nl.netns_pids(ns)

    def _start_agent(self, amphora_id: str, ns: str, mgmt_ip: str, home: Path,
                     health_targets: tuple[str, ...] = (), interval: float = 1.0) -> None:
        tls = home / "tls"
        values = {"mgmt_ip": mgmt_ip, "port": str(AGENT_PORT), "listen": _listen(mgmt_ip,
                  AGENT_PORT), "agent_dir": str(home / "agent"), "ca_file": str(tls / "ca.pem"),
                  "cert_file": str(tls / "cert.pem"), "key_file": str(tls / "key.pem"),
                  "amphora_id": amphora_id, "data_netns": names.data_netns_of(ns)}
        argv = [part.format(**values) for part in self.agent_argv]
        if self.heartbeat_args and health_targets:
            for target in health_targets:
                argv += ["--heartbeat-target", target]
            argv += ["--heartbeat-key-file", str(tls / "heartbeat.key"),
                     "--heartbeat-interval", str(interval)]
        if self.confine:
            hidden = [arg for path in self.hide for arg in ("--hide", str(path))]
            argv = [sys.executable, "-m", "lbaas.drivers.local.confine", "--home", str(home),
                    *hidden, "--netns", ns, "--netns", names.data_netns_of(ns), "--", *argv]
        with open(home / "agent.log", "ab") as log:
            child = subprocess.Popen(
                [nl.IP, "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=home, start_new_session=True, close_fds=True)
        self._children[ns] = child
        (home / "agent.pid").write_text(f"{child.pid}\n")

    async def _wait_listening(self, ns: str, mgmt_ip: str, home: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.reach_agent:
                if _listening_in(home, AGENT_PORT):
                    return
            else:
                try:
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection(mgmt_ip, AGENT_PORT), timeout=1.0)
                    writer.close()
                    return
                except (TimeoutError, OSError):
                    pass
            child = self._children.get(ns)
            exited = child is not None and child.poll() is not None
            if exited or time.monotonic() > deadline:
                why = "exited" if exited else f"is not listening after {START_TIMEOUT:.0f} s"
                raise DriverError(f"agent in {ns} {why} on {mgmt_ip}:{AGENT_PORT}; log tail:\n"
                                  f"{_tail(home / 'agent.log')}")
            await asyncio.sleep(0.01)

    async def _pids(self, ns: str) -> list[int]:
        """Processes in the amphora's two namespaces."""
        return [*await nl.netns_pids(ns), *await nl.netns_pids(names.data_netns_of(ns))]

    async def _stop_processes(self, ns: str) -> None:
        await self._stop_agent(ns)
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 2.0)):
            pids = await self._pids(ns)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while pids and time.monotonic() < deadline:
                self._reap(ns)
                await asyncio.sleep(0.05)
                pids = await self._pids(ns)
            if not pids:
                break
        self._reap(ns)

    async def _stop_agent(self, ns: str) -> None:
        """SIGTERM the agent alone first: it stops keepalived and HAProxy itself, whereas an
        HAProxy signalled beside it could be restarted by its watchdog and outlive the delete."""
        try:
            pid = int((self.base_dir / ns / "agent.pid").read_text())
        except (OSError, ValueError):
            return
        if pid not in await nl.netns_pids(ns):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and pid in await nl.netns_pids(ns):
            self._reap(ns)
            await asyncio.sleep(0.05)

    def _reap(self, ns: str) -> None:
        child = self._children.get(ns)
        if child is not None and child.poll() is not None:
            del self._children[ns]

    def compute_id_for(self, amphora_id: str) -> str | None:
        return names.amphora_netns(amphora_id)

    async def delete_amphora(self, compute_id: str) -> None:
        ns = compute_id
        spaces = (ns, names.data_netns_of(ns))
        if any([await nl.netns_exists(space) for space in spaces]):
            await self._stop_processes(ns)
        await self.network.unplug_all(ns)
        for space in spaces:
            if await nl.netns_exists(space):
                await nl.netns_delete(space)
        if self.base_dir.is_dir():
            for home in self.base_dir.iterdir():
                if home.is_dir() and home.name == ns:
                    shutil.rmtree(home, ignore_errors=True)

    async def list_amphorae(self) -> list[str]:
        """Namespaces of amphorae this driver made (a directory under base_dir) that exist."""
        existing = set(await nl.netns_list())
        if not self.base_dir.is_dir():
            return []
        made = {p.name for p in self.base_dir.iterdir() if p.is_dir()}
        return sorted(made & existing)
