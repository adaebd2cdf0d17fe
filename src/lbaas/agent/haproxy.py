"""Driving HAProxy as one daemon without a master: validate, start or adopt, hitless reload,
runtime commands.

Key choice: no master process. ``haproxy -D`` forks one daemon and the launcher exits, so an idle
amphora pays for one HAProxy (about 7 MB RSS) instead of a master and a worker (about 20 MB).

The daemon is nobody's child and outlives the agent: a later agent finds it through the pid file
(its command line names our pid file, against pid reuse) and adopts it. ``run/haproxy.serving``
records which daemon loaded which config file; unless it names this daemon and the active file,
the adopted daemon is reloaded, so the files on disk are always what serves (and an on-demand
agent process adopting an up-to-date daemon does not reload it for nothing).

Reloads are the classic ones: a new daemon takes the listening sockets over from the stats socket
(``-x``, the config's ``expose-fd listeners``), then the old one gets SIGUSR1 to finish its
connections and leave (what ``-sf`` sends, but from the agent, once the pid file names the new
daemon). The launcher exits non-zero when the new config does not come up (a port taken...), and
then the old daemon was never signalled: it keeps serving untouched.

Privileges: every launcher starts as root (to bind, read the certificates and, on a reload, take
the listeners over the root-only stats socket) and the daemon then drops to the config's
``user``/``group`` and chroots into ``run/haproxy-chroot``, an empty root-owned 0555 directory
made here before each launch (never by ``haproxy -c``, which does not need it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import time
from pathlib import Path

from lbaas.agent.haproxy_pids import is_our_haproxy, launch_pid_arg, read_pid
from lbaas.agent.layout import (
    HAPROXY_LAUNCH_PID,
    HAPROXY_PID,
    HAPROXY_SERVING,
    HAPROXY_SOCK,
)
from lbaas.agent.netns import LIBC as _LIBC
from lbaas.agent.netns import DataNamespace
from lbaas.wire.agent_api import ENV_CONF_DIR, ENV_RUN_DIR
from lbaas.wire.files import HAPROXY_CHROOT

log = logging.getLogger("lbaas.agent.haproxy")

HAPROXY_BIN = os.environ.get("LBAAS_HAPROXY_BIN", "haproxy")
_CLI_OK = ("", "New server registered.", "Server deleted.")


_PR_SET_PDEATHSIG = 1


class HAProxyError(Exception):
    """HAProxy refused a config, a command or did not come up; the text is safe to show."""


def _die_with_parent() -> None:
    # For keepalived (HAProxy itself outlives the agent): a dead agent's amphora stops advertising.
    # Runs between fork and exec: only a call into the already loaded libc.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def cli(sock: Path, command: str, timeout: float = 5.0) -> str:
    """One command on a HAProxy CLI socket (the stats socket); returns the answer text."""

    async def run() -> str:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # one command only: HAProxy answers, then closes
            return (await reader.read()).decode(errors="replace")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.wait_for(run(), timeout)


async def cli_ok(sock: Path, command: str) -> None:
    """Run a state-changing command; raise HAProxyError unless HAProxy says it succeeded."""
    answer = (await cli(sock, command)).strip()
    if answer not in _CLI_OK:
        raise HAProxyError(f"{command.split(' ')[0:3]}: {answer[:200]}")


def reason_lines(output: str) -> str:
    """HAProxy's own explanation: its ALERT lines (or the whole output when there are none)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    alerts = [ln for ln in lines if "[ALERT]" in ln]
    return "\n".join(alerts or lines)[:4000] or "haproxy -c failed without output"


class HAProxy:
    """One HAProxy instance whose files live under ``conf_dir`` and sockets under ``run_dir``."""

    def __init__(self, conf_dir: Path, run_dir: Path, netns: DataNamespace | None = None) -> None:
        self.conf_dir = conf_dir
        self.run_dir = run_dir
        self.netns = netns or DataNamespace()  # where the daemon binds and connects
        self.stats_sock = run_dir / HAPROXY_SOCK
        self.pid_file = run_dir / HAPROXY_PID
        # HAProxy's own -p file: empty for milliseconds while a launcher runs (it truncates the
        # file, signals the old daemon, forks, then writes), too long for keepalived's track
        # script (fall 1). pid_file gets its content with one rename once the launcher is done.
        self._launch_pid_file = run_dir / HAPROXY_LAUNCH_PID
        self._serving_file = run_dir / HAPROXY_SERVING  # "<pid> <config id>" once it answers
        # Absolute in the command line: it marks our daemons, whatever the agent's cwd was.
        self._pid_arg = launch_pid_arg(str(run_dir))
        self._pid: int | None = None  # the daemon serving the current config
        self._draining: set[int] = set()  # older daemons finishing their connections

    def env(self, conf_dir: Path) -> dict[str, str]:
        return {**os.environ, ENV_RUN_DIR: str(self.run_dir), ENV_CONF_DIR: str(conf_dir)}

    async def check(self, directory: Path) -> None:
        """``haproxy -c`` on ``directory/haproxy.cfg``; HAProxyError with its reason lines."""
        proc = await asyncio.create_subprocess_exec(
            HAPROXY_BIN, "-c", "-f", str(directory / "haproxy.cfg"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=self.env(directory))
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise HAProxyError(reason_lines(out.decode(errors="replace")))

    def prepare_chroot(self) -> Path:
        """The empty directory a config's ``chroot`` names: made (or put back) root-owned, mode
        0555 and empty before every launch, so the unprivileged daemon can write nothing there.
        Made only here: ``haproxy -c`` does not need it."""
        root = self.run_dir / HAPROXY_CHROOT
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o555)
        st = root.lstat()
        if not stat.S_ISDIR(st.st_mode) or any(root.iterdir()):
            raise HAProxyError(f"{root} is not an empty directory; refusing to chroot there")
        if (st.st_uid, st.st_gid) != (0, 0) and os.geteuid() == 0:
            os.chown(root, 0, 0)
        if stat.S_IMODE(st.st_mode) != 0o555:
            root.chmod(0o555)
        return root

    @property
    def running(self) -> bool:
        return self._pid is not None and self._is_ours(self._pid)

    def _is_ours(self, pid: int) -> bool:
        return is_our_haproxy(pid, self._pid_arg)

    def _ours(self) -> set[int]:
        """Every daemon of ours, found in /proc (the pid file names only the newest)."""
        return {int(e.name) for e in os.scandir("/proc")
                if e.name.isdigit() and self._is_ours(int(e.name))}

    def _publish_pid(self, pid: int) -> None:
        tmp = self.pid_file.with_name(".haproxy.pid.tmp")
        tmp.write_text(f"{pid}\n")
        os.replace(tmp, self.pid_file)

    async def start(self, timeout: float = 10.0) -> None:
        """Adopt the daemon a previous agent left (reloading it unless it serves the active
        config) or launch a new one; returns once it answers on the stats socket."""
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The launcher's file names the newest daemon even if an agent died before publishing it.
        current = read_pid(self._launch_pid_file) or read_pid(self.pid_file)
        # Older daemons of ours must not keep serving alongside (an agent that died mid-reload
        # never told them to leave); the already draining ones do not mind being told again.
        others = self._ours() - {current}
        if current is not None and self._is_ours(current):
            self._pid = current
            self._publish_pid(current)
            self._retire(others)
            if self._recorded() == f"{current} {self._config_id()}":
                log.info("adopted the running haproxy %d, which serves the active config", current)
                return
            log.warning("adopting the running haproxy %d; reloading it with the active config",
                        current)
            await self.reload(timeout)
            return
        self._pid = None
        deadline = time.monotonic() + timeout
        mark = self._log_mark()
        config = self._config_id()
        self._pid = await self._launch([], deadline)
        self._retire(others)
        await self._wait_serving(self._pid, deadline, mark)
        self._record(self._pid, config)

    async def reload(self, timeout: float = 15.0) -> None:
        """Hitless reload; returns once the new daemon answers (HAProxyError if it did not come
        up: then the old one still serves, unless the new one died after taking over)."""
        old = self._pid
        if old is None or not self._is_ours(old):
            raise HAProxyError("haproxy is not running")
        deadline = time.monotonic() + timeout
        mark = self._log_mark()
        config = self._config_id()
        # Without a stats socket to take the listeners from, -x would fail the reload: bind anew
        # (SO_REUSEPORT lets both processes listen meanwhile).
        takeover = ["-x", os.path.abspath(self.stats_sock)] if self.stats_sock.exists() else []
        self._pid = await self._launch(takeover, deadline)
        self._retire({old})
        await self._wait_serving(self._pid, deadline, mark)
        self._record(self._pid, config)

    def _retire(self, pids: set[int]) -> None:
        """What ``-sf`` would send (SIGUSR1: stop listening, finish the connections, exit), but
        only once pid_file names the new daemon: no instant without a live pid in it."""
        self._draining = {pid for pid in self._draining | pids if self._is_ours(pid)}
        self._signal(pids, signal.SIGUSR1)

    def _config_id(self) -> str:
        """The active haproxy.cfg: its version directory and inode (bundle files are written
        once into a fresh directory, never edited in place)."""
        cfg = self.conf_dir / "haproxy.cfg"
        try:
            st = cfg.stat()
        except OSError:
            return "none"
        return f"{os.path.realpath(cfg)}:{st.st_ino}:{st.st_mtime_ns}"

    def _recorded(self) -> str:
        try:
            return self._serving_file.read_text().strip()
        except OSError:
            return ""

    def _record(self, pid: int, config: str) -> None:
        tmp = self._serving_file.with_suffix(".tmp")
        tmp.write_text(f"{pid} {config}\n")
        os.replace(tmp, self._serving_file)

    async def _launch(self, extra: list[str], deadline: float) -> int:
        """Run ``haproxy -D`` until its launcher exits; the new daemon's pid."""
        mark = self._log_mark()
        self.prepare_chroot()
        with open(self.run_dir / "haproxy.log", "ab") as logf:
            launcher = await asyncio.create_subprocess_exec(
                HAPROXY_BIN, "-D", "-f", os.path.abspath(self.conf_dir / "haproxy.cfg"),
                "-p", self._pid_arg, *extra,
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
                env=self.env(self.conf_dir), preexec_fn=self.netns.preexec())
        try:
            code = await asyncio.wait_for(launcher.wait(), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            launcher.kill()
            await launcher.wait()
            raise HAProxyError(f"haproxy did not start in time: {self._log_tail(mark)}") from None
        if code != 0:
            raise HAProxyError(f"haproxy did not start: {self._log_tail(mark)}")
        pid = read_pid(self._launch_pid_file)  # written before the launcher exits
        if pid is None:
            raise HAProxyError("haproxy started but wrote no pid file")
        self._publish_pid(pid)
        return pid

    async def _wait_serving(self, pid: int, deadline: float, mark: int) -> None:
        # Later runtime commands must reach the new daemon, not the one draining away.
        while time.monotonic() < deadline:
            if not self._is_ours(pid):
                raise HAProxyError(f"haproxy exited at start: {self._log_tail(mark)}")
            with contextlib.suppress(OSError, TimeoutError):
                if f"\nPid: {pid}\n" in await cli(self.stats_sock, "show info", timeout=1.0):
                    return
            await asyncio.sleep(0.01)
        raise HAProxyError(f"haproxy {pid} did not answer on its stats socket: "
                           f"{self._log_tail(mark)}")

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every daemon of ours (serving and draining), SIGKILL what outlives
        ``timeout``. Needs no child handle: any process may stop them."""
        pids = {p for p in {self._pid, *self._draining} if p is not None} | self._ours()
        self._pid, self._draining = None, set()
        self._signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (pids := {p for p in pids if self._is_ours(p)}) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if pids:
            log.warning("haproxy %s did not stop in %.0f s; killing it", sorted(pids), timeout)
            self._signal(pids, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while {p for p in pids if self._is_ours(p)} and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    def _signal(self, pids: set[int], sig: signal.Signals) -> None:
        for pid in pids:
            if self._is_ours(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _log_mark(self) -> int:
        try:
            return (self.run_dir / "haproxy.log").stat().st_size
        except OSError:
            return 0

    def _log_tail(self, mark: int = 0) -> str:
        """HAProxy's reason lines logged since ``mark`` (a size from ``_log_mark``)."""
        try:
            with open(self.run_dir / "haproxy.log", "rb") as f:
                f.seek(mark)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return reason_lines("\n".join(text.splitlines()[-20:]))
