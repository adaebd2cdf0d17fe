"""Running a runtime plan (``runtime_diff.runtime_plan``) on HAProxy's stats socket.

Key choice: a member being removed is first put in maintenance by the plan, then its requests in
flight get up to ``DRAIN_SECONDS`` before ``shutdown sessions`` cuts what is left (long-lived
connections); ``del server`` is retried while HAProxy releases those connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from lbaas.agent.haproxy import HAProxyError, cli, cli_ok
from lbaas.agent.stats import parse_show_stat

log = logging.getLogger("lbaas.agent")
DRAIN_SECONDS = 2.0


async def run_plan(sock: Path, plan: list[str]) -> bool:
    """Run the commands; False (the caller reloads) at the first one HAProxy refuses."""
    for command in plan:
        try:
            if command.startswith("del server"):
                await _del_server(sock, command)
            elif command.startswith("shutdown sessions server "):
                await _drain(sock, command.rsplit(" ", 1)[1])
                await cli_ok(sock, command)
            else:
                await cli_ok(sock, command)
        except (TimeoutError, HAProxyError, OSError) as exc:
            log.warning("runtime change refused, reloading instead: %s", exc)
            return False
    return True


async def _drain(sock: Path, target: str, timeout: float = DRAIN_SECONDS) -> None:
    """Until ``target`` (already in maintenance) has no request in flight, at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = parse_show_stat(await cli(sock, "show stat")).get(target)
        if row is None or not row.get("scur"):
            return
        await asyncio.sleep(0.01)


async def _del_server(sock: Path, command: str) -> None:
    # Connections closed by `shutdown sessions` take a moment to be released.
    for _ in range(20):
        try:
            await cli_ok(sock, command)
            return
        except HAProxyError as exc:
            last = exc
        await asyncio.sleep(0.05)
    raise last
