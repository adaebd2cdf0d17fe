"""Driving one HAProxy master-worker process: validate, start, hitless reload, runtime commands.

Key choice: HAProxy runs in the foreground as the agent's child (``-W``, master CLI on
``run/master.sock``), so the agent owns its lifetime. Reloads are SIGUSR2 to the master; the
listening sockets pass to the new worker through the stats socket's ``expose-fd listeners``. A
reload counts as done when the master's ``show proc`` lists a new worker (or a failed reload).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import time
from pathlib import Path

from lbaas.agent.stale import stop_stale
from lbaas.wire.agent_api import ENV_CONF_DIR, ENV_RUN_DIR

log = logging.getLogger("lbaas.agent.haproxy")

HAPROXY_BIN = os.environ.get("LBAAS_HAPROXY_BIN", "haproxy")
_CLI_OK = ("", "New server registered.", "Server deleted.")
_PROC_MASTER = re.compile(r"^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.M)


_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


class HAProxyError(Exception):
    """HAProxy refused a config, a command or did not come up; the text is safe to show."""


def _die_with_parent() -> None:
    # If the agent is killed outright, HAProxy must not keep serving a config nobody manages.
    # Runs between fork and exec: only a call into the already loaded libc.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def cli(sock: Path, command: str, timeout: float = 5.0) -> str:
    """One command on a HAProxy CLI socket (stats or master); returns the answer text."""

    async def run() -> str:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # the master CLI answers only once it sees the end of input
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

    def __init__(self, conf_dir: Path, run_dir: Path) -> None:
        self.conf_dir = conf_dir
        self.run_dir = run_dir
        self.stats_sock = run_dir / "haproxy.sock"
        self.master_sock = run_dir / "master.sock"
        self.pid_file = run_dir / "haproxy.pid"
        self._proc: asyncio.subprocess.Process | None = None

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

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def kill_stale(self) -> None:
        """Stop a master left behind by a previous agent that died (its pid file is ours)."""
        stop_stale(self.pid_file, b"haproxy", str(self.master_sock))

    async def start(self, timeout: float = 10.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.kill_stale()
        for stale in (self.stats_sock, self.master_sock):
            stale.unlink(missing_ok=True)
        mark = self._log_mark()
        logf = open(self.run_dir / "haproxy.log", "ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                HAPROXY_BIN, "-W", "-S", str(self.master_sock),
                "-f", str(self.conf_dir / "haproxy.cfg"), "-p", str(self.pid_file),
                stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
                env=self.env(self.conf_dir), preexec_fn=_die_with_parent)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise HAProxyError(f"haproxy exited at start: {self._log_tail(mark)}")
            with contextlib.suppress(OSError, TimeoutError):
                if "Pid:" in await cli(self.stats_sock, "show info", timeout=1.0):
                    return
            await asyncio.sleep(0.01)
        await self.stop()
        raise HAProxyError(f"haproxy did not answer on its stats socket: {self._log_tail(mark)}")

    async def _show_proc(self) -> tuple[int, int, list[int]]:
        """(reloads, failed reloads, current worker pids) from the master CLI."""
        text = await cli(self.master_sock, "show proc", timeout=2.0)
        match = _PROC_MASTER.search(text)
        if match is None:
            raise HAProxyError(f"unexpected 'show proc' answer: {text[:200]}")
        workers: list[int] = []
        section = ""
        for line in text.splitlines():
            if line.startswith("# "):
                section = line
            elif section == "# workers" and line.strip():
                workers.append(int(line.split()[0]))
        return int(match.group(2)), int(match.group(3)), workers

    async def reload(self, timeout: float = 15.0) -> None:
        """Hitless reload; returns once a new worker serves (HAProxyError if the reload failed)."""
        if not self.running or self._proc is None:
            raise HAProxyError("haproxy is not running")
        reloads, failed, before = await self._show_proc()
        mark = self._log_mark()
        self._proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if not self.running:
                raise HAProxyError(f"haproxy exited during reload: {self._log_tail(mark)}")
            try:
                now_reloads, now_failed, workers = await self._show_proc()
            except (TimeoutError, OSError, HAProxyError):
                continue  # the master is re-executing itself
            if now_failed > failed:
                raise HAProxyError(f"reload failed: {self._log_tail(mark)}")
            new = [pid for pid in workers if pid not in before]
            if now_reloads > reloads and new:
                await self._wait_stats_from(new[0], deadline)
                return
        raise HAProxyError(f"no new haproxy worker after reload: {self._log_tail(mark)}")

    async def _wait_stats_from(self, pid: int, deadline: float) -> None:
        # Later runtime commands must reach the new worker, not the one draining away.
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, TimeoutError):
                if f"\nPid: {pid}\n" in await cli(self.stats_sock, "show info", timeout=1.0):
                    return
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()

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
