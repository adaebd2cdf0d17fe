"""Driving keepalived for an ACTIVE_STANDBY amphora: check, start, reload (SIGHUP), stop.

Key choice: keepalived runs in the foreground as the agent's child (``-n``, VRRP only), dies with
the agent (so a dead agent's amphora stops advertising and the peer takes the VIP), and reads
``conf/keepalived.conf`` through the agent's ``conf`` symlink, so a SIGHUP after a bundle swap
re-reads the new file. Its environment carries ``LBAAS_RUN_DIR`` for the HAProxy track script.
It runs in the amphora's data namespace (``netns.py``), where the VIP leg is.

A bundle that takes a drained MASTER's VIP over also carries ``handover.nft``: it is loaded
(``nft -f``) before keepalived starts or re-reads its config, so it is in place when this amphora
announces the VIP, and its table is deleted once a config comes without it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

from lbaas.agent.haproxy import _die_with_parent, reason_lines
from lbaas.agent.netns import DataNamespace
from lbaas.agent.stale import stop_stale
from lbaas.agent.udp import UdpError, nft
from lbaas.wire.agent_api import ENV_CONF_DIR, ENV_RUN_DIR, KEEPALIVED_CONF
from lbaas.wire.files import HANDOVER_NFT

log = logging.getLogger("lbaas.agent.keepalived")

KEEPALIVED_BIN = os.environ.get("LBAAS_KEEPALIVED_BIN", "keepalived")
HANDOVER_TABLE = "lbaas_handover"  # the table handover.nft defines (render.keepalived)


class KeepalivedError(Exception):
    """keepalived refused a config or did not start; the text is safe to show."""


class Keepalived:
    """One keepalived (VRRP only) whose config is ``conf_dir/keepalived.conf``."""

    def __init__(self, conf_dir: Path, run_dir: Path, netns: DataNamespace | None = None) -> None:
        self.conf_dir = conf_dir
        self.run_dir = run_dir
        self.netns = netns or DataNamespace()  # VRRP runs on the VIP leg
        self.pid_file = run_dir / "keepalived.pid"
        self.vrrp_pid_file = run_dir / "keepalived_vrrp.pid"
        self.log_file = run_dir / "keepalived.log"
        self._proc: asyncio.subprocess.Process | None = None
        # a table may be left by an agent that died mid-handover in a data namespace
        self._handover_loaded = self.netns.name is not None

    def env(self, conf_dir: Path) -> dict[str, str]:
        return {**os.environ, ENV_RUN_DIR: str(self.run_dir), ENV_CONF_DIR: str(conf_dir)}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def check(self, directory: Path) -> None:
        """``keepalived --config-test`` on ``directory/keepalived.conf``."""
        try:
            proc = await asyncio.create_subprocess_exec(
                KEEPALIVED_BIN, "--config-test", "-f", str(directory / KEEPALIVED_CONF),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=self.env(directory),
                preexec_fn=self.netns.preexec())  # (it looks the interfaces up)
        except OSError as exc:
            raise KeepalivedError(f"cannot run {KEEPALIVED_BIN}: {exc.strerror}") from None
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            text = out.decode(errors="replace")
            raise KeepalivedError(f"keepalived refused the config: {reason_lines(text)}")

    def kill_stale(self) -> None:
        """Stop a keepalived left behind by a previous agent that died (its pid file is ours)."""
        stop_stale(self.pid_file, b"keepalived", str(self.pid_file))

    async def start(self, settle: float = 0.3) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.kill_stale()
        await self.sync_handover()
        logf = open(self.log_file, "ab")
        try:
            self._proc = await self._spawn(logf)
        except OSError as exc:
            raise KeepalivedError(f"cannot run {KEEPALIVED_BIN}: {exc.strerror}") from None
        finally:
            logf.close()
        # keepalived has no readiness signal; a config it rejects makes it exit at once.
        await asyncio.sleep(settle)
        if not self.running:
            raise KeepalivedError(f"keepalived exited at start: {self.log_tail()}")

    async def _spawn(self, logf: Any) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            KEEPALIVED_BIN, "--vrrp", "--dont-fork", "--log-console", "--log-detail",
            "--no-syslog", "-f", str(self.conf_dir / KEEPALIVED_CONF),
            "-p", str(self.pid_file), "-r", str(self.vrrp_pid_file),
            stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
            env=self.env(self.conf_dir), preexec_fn=self.netns.preexec(_die_with_parent))

    async def reload(self) -> None:
        """SIGHUP: keepalived re-reads conf/keepalived.conf and keeps its VRRP state."""
        if self._proc is None or not self.running:
            raise KeepalivedError("keepalived is not running")
        await self.sync_handover()
        self._proc.send_signal(signal.SIGHUP)

    async def sync_handover(self) -> None:
        """Load ``conf/handover.nft`` if the config has one, else delete a loaded table. A
        failure is logged, not raised: the VIP then moves as before, without the forwarding."""
        rules = self.conf_dir / HANDOVER_NFT
        try:
            if rules.is_file():
                await nft("-f", str(rules), netns=self.netns)
                self._handover_loaded = True
                log.info("handover rules loaded: connections this amphora did not see start "
                         "go to the MASTER it takes the VIP from")
            elif self._handover_loaded:
                await self._delete_handover()
                log.info("handover rules removed")
        except UdpError as exc:
            if "No such file or directory" not in str(exc):  # (no table left to delete)
                log.warning("handover rules: %s", exc)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: keepalived sends a priority 0 advert, so the peer takes the VIP at once."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._handover_loaded:
            try:
                await self._delete_handover()
            except UdpError:
                pass  # none left, or the namespace is going away

    async def _delete_handover(self) -> None:
        self._handover_loaded = False
        await nft("delete", "table", "netdev", HANDOVER_TABLE, netns=self.netns)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_bytes()[-8000:].decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
