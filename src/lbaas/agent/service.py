"""What the agent does, without HTTP: apply a bundle, report status and statistics.

Key choice: one lock serializes bundle applications. A bundle is staged and checked with
``haproxy -c`` before anything changes; after the atomic swap it is applied by the cheapest safe
means (start, runtime API, hitless reload). If HAProxy then refuses it, the previous version is
put back so the files on disk always describe what serves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from lbaas.agent.haproxy import HAProxy, HAProxyError, cli
from lbaas.agent.keepalived import Keepalived, KeepalivedError
from lbaas.agent.netns import DataNamespace
from lbaas.agent.runtime_diff import adds_http_server, runtime_plan
from lbaas.agent.runtime_run import run_plan
from lbaas.agent.stats import parse_show_stat
from lbaas.agent.store import ConfigStore
from lbaas.agent.udp import NFTABLES_CONF, UDP_MEMBERS_JSON, UdpBalancer, UdpError
from lbaas.wire.agent_api import (
    API_VERSION,
    HAPROXY_CFG,
    KEEPALIVED_CONF,
    Applied,
    ApplyResponse,
    Bundle,
    InfoResponse,
    StatsResponse,
    StatusResponse,
)

log = logging.getLogger("lbaas.agent")
# Servers added at runtime to an HTTP backend never reuse server connections (HAProxy 2.6): once
# runtime changes pause this long (at most REUSE_RELOAD_MAX after the first), reload from the file.
REUSE_RELOAD_QUIET = float(os.environ.get("LBAAS_AGENT_RELOAD_QUIET", "1.5"))
REUSE_RELOAD_MAX = 10.0


class BundleRejected(Exception):
    """The bundle is invalid or HAProxy refused it; the previous config still serves."""


class Agent:
    def __init__(self, base_dir: Path, amphora_id: str,
                 netns: DataNamespace | None = None) -> None:
        """``netns``: the amphora's data namespace (VIP and member legs), where HAProxy,
        keepalived, the nftables rules and the probes run; None: the agent's own."""
        self.amphora_id = amphora_id
        self.store = ConfigStore(base_dir)
        self.netns = netns or DataNamespace()
        self.haproxy = HAProxy(self.store.conf, self.store.run, self.netns)
        self.keepalived = Keepalived(self.store.conf, self.store.run, self.netns)
        self.udp = UdpBalancer(self.netns)  # UDP/SCTP listeners: nftables rules + checks
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_window: tuple[float, float] | None = None  # (first change, reload at)
        # started and stopped with the agent (the UDP status publisher): start(), stop()
        self.companions: list[Any] = []
        # An idle (or orphaned) worker exits leaving HAProxy serving; SIGTERM stops it too.
        self.keep_serving_on_exit = False

    async def startup(self) -> None:
        """Serve the last good config again, if there is one, and keep HAProxy up."""
        async with self._lock:
            await self._ensure_running()
            await self._ensure_keepalived()
            if self.store.active_file(NFTABLES_CONF) is not None:
                await self._apply_udp()
        self._watchdog = asyncio.create_task(self._watch())
        for companion in self.companions:
            await companion.start()

    async def shutdown(self) -> None:
        for companion in self.companions:
            await companion.stop()
        await self.udp.stop()
        for task in (self._watchdog, self._reload_task):
            if task is not None:
                task.cancel()
        async with self._lock:
            await self.keepalived.stop()  # first: the peer takes the VIP while HAProxy still serves
            if not self.keep_serving_on_exit:
                await self.haproxy.stop()

    def has_duties(self) -> bool:
        """Work that needs a running worker: keepalived (its child), UDP/SCTP checks, a
        pending reload, a bundle being applied."""
        return (self.keepalived.running or self.udp.loaded or self._lock.locked()
                or self._reload_window is not None)

    async def _ensure_running(self) -> bool:
        if self.haproxy.running or self.store.active_file(HAPROXY_CFG) is None:
            return True
        try:
            await self.haproxy.start()
        except HAProxyError as exc:
            log.error("could not start haproxy with the active config: %s", exc)
            return False
        return True

    async def _watch(self, period: float = 1.0, max_backoff: float = 30.0) -> None:
        """Restart HAProxy if it dies on its own (a crash, an OOM kill), backing off on failure."""
        delay = period
        while True:
            await asyncio.sleep(delay)
            async with self._lock:
                if not self.haproxy.running and self.store.active_file(HAPROXY_CFG) is not None:
                    log.warning("haproxy is not running; starting it with the active config")
                ok = await self._ensure_running()
                ok = await self._ensure_keepalived() and ok
            delay = period if ok else min(delay * 2, max_backoff)

    async def _ensure_keepalived(self) -> bool:
        """Run keepalived iff the active config has keepalived.conf (ACTIVE_STANDBY)."""
        wanted = self.store.active_file(KEEPALIVED_CONF) is not None
        if wanted == self.keepalived.running:
            return True
        try:
            if wanted:
                log.info("starting keepalived")
                await self.keepalived.start()
            else:
                await self.keepalived.stop()
        except KeepalivedError as exc:
            log.error("could not start keepalived: %s", exc)
            return False
        return True

    def info(self) -> InfoResponse:
        return InfoResponse(amphora_id=self.amphora_id, api_version=API_VERSION)

    def status(self) -> StatusResponse:
        return StatusResponse(digest=self.store.active_digest(),
                              haproxy_running=self.haproxy.running,
                              amphora_id=self.amphora_id)

    async def apply(self, bundle: Bundle) -> ApplyResponse:
        async with self._lock:
            applied = await self._apply(bundle)
            log.info("bundle %s applied: %s", bundle.digest, applied)
            return ApplyResponse(digest=bundle.digest, applied=applied)

    async def _apply(self, bundle: Bundle) -> Applied:
        if bundle.digest == self.store.active_digest() and self.haproxy.running \
                and self.keepalived.running == (KEEPALIVED_CONF in bundle.files):
            return "unchanged"
        try:
            staging = self.store.stage(bundle)
        except OSError as exc:
            raise BundleRejected(f"cannot write the bundle: {exc}") from exc
        old_cfg = self.store.active_file(HAPROXY_CFG)
        old_vrrp = self.store.active_file(KEEPALIVED_CONF)
        old_udp = (self.store.active_file(NFTABLES_CONF), self.store.active_file(UDP_MEMBERS_JSON))
        plan = None
        if old_cfg is not None and self.haproxy.running:
            plan = runtime_plan(old_cfg, bundle.files[HAPROXY_CFG])
            if plan is not None and not self._same_other_files(bundle):
                plan = None  # another file changed (a certificate...): HAProxy must re-read it
        if plan is None:
            await self._check_or_discard(staging, bundle)
            ran = False
        else:  # False if HAProxy refused a command: the reload below converges on the file
            ran = await self._runtime_while_checking(plan, staging, bundle)
        previous = self.store.activate(staging)
        try:
            applied = "runtime" if ran else await self._start_or_reload()
        except HAProxyError as exc:
            self.store.restore(previous)
            if not self.haproxy.running and previous is not None:
                await self._restart_previous()
            raise BundleRejected(str(exc)) from exc
        self._after_applied(applied, adds_http_server(bundle.files[HAPROXY_CFG], plan or []))
        if old_udp != (bundle.files.get(NFTABLES_CONF), bundle.files.get(UDP_MEMBERS_JSON)):
            await self._apply_udp()
        if self.keepalived.running and old_vrrp != bundle.files.get(KEEPALIVED_CONF, old_vrrp):
            await self.keepalived.reload()
        if not await self._ensure_keepalived():
            raise BundleRejected(f"HAProxy applied it but keepalived did not start: "
                                 f"{self.keepalived.log_tail(5)}")
        return applied

    async def _check_or_discard(self, staging: Path, bundle: Bundle) -> None:
        """``haproxy -c`` (and keepalived's and nft's checks) on the staged bundle."""
        try:
            await self.haproxy.check(staging)
            if KEEPALIVED_CONF in bundle.files:
                await self.keepalived.check(staging)
            await self.udp.check(staging)
        except (HAProxyError, KeepalivedError, UdpError) as exc:
            self.store.discard(staging)
            raise BundleRejected(str(exc)) from exc

    async def _runtime_while_checking(self, plan: list[str], staging: Path,
                                      bundle: Bundle) -> bool:
        """Only server lines changed: HAProxy's runtime API takes them at once while
        ``haproxy -c`` (tens of ms) checks the new file. If the check refuses it, a reload from
        the active file, unchanged so far, undoes what the commands did."""
        check = asyncio.create_task(self._check_or_discard(staging, bundle))
        try:
            ran = await run_plan(self.haproxy.stats_sock, plan)
        finally:
            try:
                await check
            except BundleRejected:
                await self._undo_runtime()
                raise
        return ran

    async def _undo_runtime(self) -> None:
        try:
            await self.haproxy.reload()
        except HAProxyError as exc:
            log.error("could not reload the active config after a refused bundle: %s", exc)

    async def _start_or_reload(self) -> Applied:
        if not self.haproxy.running:
            await self.haproxy.start()
            return "start"
        await self.haproxy.reload()
        return "reload"

    def _after_applied(self, applied: Applied, http_added: bool) -> None:
        """Schedule, postpone or forget the reload that makes runtime-added servers file-born."""
        if applied != "runtime":
            self._reload_window = None  # HAProxy re-read the file: nothing runtime-born is left
            return
        if self._reload_window is None and not http_added:
            return
        now = time.monotonic()
        first = self._reload_window[0] if self._reload_window else now
        self._reload_window = (first, min(now + REUSE_RELOAD_QUIET, first + REUSE_RELOAD_MAX))
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self._deferred_reload())

    async def _deferred_reload(self) -> None:
        while self._reload_window is not None:
            await asyncio.sleep(max(0.0, self._reload_window[1] - time.monotonic()))
            async with self._lock:
                window = self._reload_window
                if window is None or time.monotonic() < window[1]:
                    continue  # another bundle reloaded, or more changes came meanwhile
                self._reload_window = None
                if not self.haproxy.running:
                    return
                try:
                    await self.haproxy.reload()
                    log.info("reloaded so that runtime-added servers reuse connections")
                except HAProxyError as exc:
                    log.warning("deferred reload failed: %s", exc)

    async def _apply_udp(self) -> None:
        try:
            await self.udp.apply(self.store.conf)
        except (UdpError, OSError, ValueError) as exc:  # validated by nft -c: not expected
            log.error("could not apply the UDP/SCTP rules: %s", exc)

    def _same_other_files(self, bundle: Bundle) -> bool:
        active = self.store.conf.resolve()
        names = {str(p.relative_to(active)) for p in active.rglob("*")
                 if p.is_file() and not p.name.startswith(".")}
        ours = {NFTABLES_CONF, UDP_MEMBERS_JSON}  # not HAProxy's: no reload for them
        return names - ours == set(bundle.files) - ours and all(
            self.store.active_file(name) == text
            for name, text in bundle.files.items() if name not in (HAPROXY_CFG, *ours))

    async def _restart_previous(self) -> None:
        try:
            await self.haproxy.start()
        except HAProxyError as exc:
            log.error("previous config does not start either: %s", exc)

    async def stats(self) -> StatsResponse:
        if not self.haproxy.running:
            return {}
        text = await cli(self.haproxy.stats_sock, "show stat")
        return parse_show_stat(text)

