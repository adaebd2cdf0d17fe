"""The agent and what it starts get default signal dispositions, whatever started the agent.

Under ``nohup`` (SIGHUP ignored) or from a shell's background job (SIGINT and SIGQUIT ignored)
an ignored disposition survives fork and exec: keepalived reloads on SIGHUP, and ``/bin/sh``
cannot even trap a signal ignored at its start. Here the test process ignores SIGHUP, SIGINT
and SIGQUIT while it starts the agent, as ``nohup`` and ``&`` would.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AgentProcess, free_port, haproxy_cfg, needs_haproxy, wait_for
from test_agent_keepalived import _events, install_fake_keepalived

pytestmark = needs_haproxy

IGNORED_BY_LAUNCHERS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)


@contextlib.contextmanager
def ignoring(*signals: int) -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignored_mask(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigIgn for {pid}")


@pytest.fixture
def agent_under_nohup(tmp_path: Path, pki: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    log = install_fake_keepalived(tmp_path, monkeypatch)
    agent = AgentProcess(tmp_path / "amp", pki)
    try:
        with ignoring(*IGNORED_BY_LAUNCHERS):
            agent.start()
        yield agent, log
    finally:
        agent.stop()


def test_keepalived_reloads_when_the_agent_was_started_with_sighup_ignored(
        agent_under_nohup: Any, backends: Any) -> None:
    agent, log = agent_under_nohup
    cfg = haproxy_cfg(free_port(), [f"m1 127.0.0.1:{backends('member-a').port}"])
    agent.apply(cfg, "v1", **{"keepalived.conf": "v1\n"})
    agent.apply(cfg, "v2", **{"keepalived.conf": "v2\n"})
    assert wait_for(lambda: _events(log) == ["start", "hup v2"]), _events(log)

    keepalived = int(log.read_text().split()[1])
    haproxy = int((agent.base / "run" / "haproxy.pid").read_text())
    assert agent.proc is not None
    for pid in (agent.proc.pid, keepalived, haproxy):
        for sig in IGNORED_BY_LAUNCHERS:
            assert not ignored_mask(pid) & (1 << (sig - 1)), f"{pid} ignores {sig.name}"
