"""The agent's keepalived handling, with a stand-in keepalived (``LBAAS_KEEPALIVED_BIN``): the
real one needs a network namespace and is exercised in tests/dataplane/test_active_standby.py.

The stand-in records its start (arguments, ``LBAAS_RUN_DIR``), each SIGHUP (with the first line
of the config it would re-read) and SIGTERM; ``--config-test`` refuses a file starting ``bad``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AgentProcess, free_port, haproxy_cfg, needs_haproxy, wait_for

from lbaas.drivers.base import DriverError

pytestmark = needs_haproxy

FAKE = """#!/bin/sh
conf=""
prev=""
for arg in "$@"; do
    [ "$prev" = "-f" ] && conf="$arg"
    prev="$arg"
done
if [ "$1" = "--config-test" ]; then
    if head -1 "$conf" | grep -q '^bad'; then echo "bad keyword in $conf" >&2; exit 5; fi
    exit 0
fi
echo "start $$ run=$LBAAS_RUN_DIR args=$*" >> "$FAKE_KA_LOG"
trap 'echo "hup $(head -1 "$conf")" >> "$FAKE_KA_LOG"' HUP
trap 'echo term >> "$FAKE_KA_LOG"; exit 0' TERM
while :; do sleep 1 & wait $!; done
"""


def install_fake_keepalived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in becomes the agent's keepalived; returns the file it records events in."""
    fake = tmp_path / "fake-keepalived"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "keepalived-events"
    log.touch()
    monkeypatch.setenv("LBAAS_KEEPALIVED_BIN", str(fake))  # the agent process inherits these
    monkeypatch.setenv("FAKE_KA_LOG", str(log))
    return log


@pytest.fixture
def vrrp_agent(tmp_path: Path, pki: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    log = install_fake_keepalived(tmp_path, monkeypatch)
    a = AgentProcess(tmp_path / "amp", pki)
    try:
        a.start()
        yield a, log
    finally:
        a.stop()


def _events(log: Path) -> list[str]:
    return [line.split()[0] + (" " + line.split()[1] if line.startswith("hup") else "")
            for line in log.read_text().splitlines()]


def test_keepalived_follows_the_bundle(vrrp_agent: Any, backends: Any) -> None:
    agent, log = vrrp_agent
    b1, fe = backends("member-a"), free_port()
    cfg = haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"])
    agent.apply(cfg, "single")
    assert log.read_text() == ""  # no keepalived.conf: no keepalived

    agent.apply(cfg, "v1", **{"keepalived.conf": "v1\n"})
    assert _events(log) == ["start"]
    start = log.read_text().split()
    assert f"run={agent.base / 'run'}" in start
    assert str(agent.base / "conf" / "keepalived.conf") in start  # the symlink, re-read on HUP

    agent.apply(cfg, "v2", **{"keepalived.conf": "v2\n"})
    assert wait_for(lambda: _events(log) == ["start", "hup v2"])
    # Only haproxy.cfg changes: keepalived is left alone.
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port} weight 5"]), "v3",
                **{"keepalived.conf": "v2\n"})
    with pytest.raises(DriverError) as err:
        agent.apply(cfg, "bad", **{"keepalived.conf": "bad\n"})
    assert "bad keyword" in str(err.value)
    assert agent.call("status", agent.compute)["digest"] == "v3"
    assert _events(log) == ["start", "hup v2"]

    # Dies on its own: the watchdog starts it again.
    pid = int(log.read_text().split()[1])
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: _events(log) == ["start", "hup v2", "start"], 10)

    agent.apply(cfg, "single-again")  # back to SINGLE: keepalived stops
    assert wait_for(lambda: _events(log)[-1] == "term")


def test_agent_stops_keepalived_on_shutdown(vrrp_agent: Any, backends: Any) -> None:
    agent, log = vrrp_agent
    b1, fe = backends("member-a"), free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "v1",
                **{"keepalived.conf": "v1\n"})
    assert _events(log) == ["start"]
    agent.stop()
    assert _events(log) == ["start", "term"]


def test_missing_keepalived_refuses_the_bundle(tmp_path: Path, pki: Any, backends: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBAAS_KEEPALIVED_BIN", str(tmp_path / "no-such-keepalived"))
    agent = AgentProcess(tmp_path / "amp", pki)
    try:
        agent.start()
        b1, fe = backends("member-a"), free_port()
        with pytest.raises(DriverError) as err:
            agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "v1",
                        **{"keepalived.conf": "v1\n"})
        assert "no-such-keepalived" in str(err.value)
        assert agent.call("status", agent.compute)["digest"] is None
    finally:
        agent.stop()


FAKE_NFT = """#!/bin/sh
case "$1" in
    -f) echo "nft-load $(head -1 "$2")" >> "$FAKE_KA_LOG" ;;
    delete) echo "nft-delete $4" >> "$FAKE_KA_LOG" ;;
esac
"""


def test_handover_rules_are_loaded_before_keepalived_rereads(
        tmp_path: Path, pki: Any, backends: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle with handover.nft: the rules are in place before keepalived re-reads the config
    that takes the VIP over; the next bundle without it removes them (a stand-in nft)."""
    log = install_fake_keepalived(tmp_path, monkeypatch)
    fake_nft = tmp_path / "fake-nft"
    fake_nft.write_text(FAKE_NFT)
    fake_nft.chmod(0o755)
    monkeypatch.setenv("LBAAS_NFT_BIN", str(fake_nft))
    agent = AgentProcess(tmp_path / "amp", pki)
    try:
        agent.start()
        b1, fe = backends("member-a"), free_port()
        cfg = haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"])
        agent.apply(cfg, "v1", **{"keepalived.conf": "v1\n"})
        agent.apply(cfg, "v2", **{"keepalived.conf": "v2\n", "handover.nft": "rules\n"})
        assert wait_for(lambda: log.read_text().splitlines()[1:] == ["nft-load rules", "hup v2"])
        agent.apply(cfg, "v3", **{"keepalived.conf": "v3\n"})
        assert wait_for(lambda: log.read_text().splitlines()[3:] == [
            "nft-delete lbaas_handover", "hup v3"])
    finally:
        agent.stop()
