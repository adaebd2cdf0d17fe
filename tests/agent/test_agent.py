"""The agent as the controller sees it: through AgentAmphoraDriver over two-way TLS, with real
HAProxy serving traffic from a loopback frontend to HTTP backends started by the test."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest
from agent_helpers import (
    AgentProcess,
    Probe,
    free_port,
    get,
    haproxy_cfg,
    haproxy_pids,
    needs_haproxy,
    wait_for,
)

from lbaas.drivers.base import DriverError

pytestmark = needs_haproxy


def _bodies(port: int, n: int) -> Counter[str]:
    return Counter(get(port)[0] for _ in range(n))


def test_bundle_starts_haproxy_and_traffic_flows(agent: AgentProcess, backends: Any) -> None:
    b1 = backends("member-a")
    fe = free_port()
    assert agent.call("status", agent.compute) == {
        "digest": None, "haproxy_running": False, "amphora_id": "amp-test"}

    assert agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "d1") == "d1"

    assert get(fe)[0] == "member-a"
    status = agent.call("status", agent.compute)
    assert status["digest"] == "d1" and status["haproxy_running"] is True
    # Same digest again: nothing to do, same worker.
    pid = agent.worker_pid()
    assert agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "d1") == "d1"
    assert agent.worker_pid() == pid
    stats = agent.call("stats", agent.compute)
    assert stats["listener-1/FRONTEND"]["stot"] >= 1
    assert stats["pool-1/m1"]["status"] == "no check"


def test_bad_bundle_is_refused_and_old_config_keeps_serving(agent: AgentProcess,
                                                            backends: Any) -> None:
    b1 = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "good")

    bad = haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port} wieght 3"])
    with pytest.raises(DriverError) as err:
        agent.apply(bad, "bad")

    assert "wieght" in str(err.value) and "[ALERT]" in str(err.value)
    assert agent.call("status", agent.compute)["digest"] == "good"
    assert get(fe)[0] == "member-a"
    assert "wieght" not in (agent.base / "conf" / "haproxy.cfg").read_text()


def test_unsafe_paths_are_refused(agent: AgentProcess, backends: Any) -> None:
    fe = free_port()
    for path in ("../escape", "/etc/passwd", "a/../../b", "nul\x00byte", ".digest"):
        with pytest.raises(DriverError, match="invalid bundle"):
            agent.apply(haproxy_cfg(fe, []), "x", **{path: "data"})
    assert not (agent.base.parent / "escape").exists()
    assert agent.call("status", agent.compute)["digest"] is None


def test_member_changes_use_runtime_api_without_new_worker(agent: AgentProcess,
                                                            backends: Any) -> None:
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    m1, m2 = f"m1 127.0.0.1:{a.port}", f"m2 127.0.0.1:{b.port}"
    assert agent.call("apply", agent.compute, {"files": {"haproxy.cfg": haproxy_cfg(fe, [m1])}},
                      "v1") == "v1"
    pid = agent.worker_pid()

    def applied(cfg: str, digest: str) -> str:
        result = agent.call("push", agent.compute, {"files": {"haproxy.cfg": cfg}}, digest)
        assert result["digest"] == digest
        return result["applied"]

    # Add a member (with a health check, enabled at runtime).
    assert applied(haproxy_cfg(fe, [m1, f"{m2} check inter 1s"]), "v2") == "runtime"
    assert wait_for(lambda: set(_bodies(fe, 6)) == {"member-a", "member-b"})
    # Weight change.
    assert applied(haproxy_cfg(fe, [f"{m1} weight 3", f"{m2} check inter 1s"]), "v3") == "runtime"
    assert agent.stats_cli("get weight pool-1/m1").startswith("3 (initial 1)")
    assert "m1 127.0.0.1" in (agent.base / "conf" / "haproxy.cfg").read_text()
    # Disable, then remove m1.
    assert applied(haproxy_cfg(fe, [f"{m1} weight 3 disabled", f"{m2} check inter 1s"]),
                   "v4") == "runtime"
    assert _bodies(fe, 4) == Counter({"member-b": 4})
    assert applied(haproxy_cfg(fe, [f"{m2} check inter 1s"]), "v5") == "runtime"
    assert _bodies(fe, 4) == Counter({"member-b": 4})
    assert "pool-1/m1" not in agent.call("stats", agent.compute)
    assert f"127.0.0.1:{a.port}" not in (agent.base / "conf" / "haproxy.cfg").read_text()

    assert agent.worker_pid() == pid
    assert agent.call("status", agent.compute)["digest"] == "v5"
    # A change outside server lines needs a reload: a new worker.
    assert applied(haproxy_cfg(fe, [f"{m2} check inter 1s"], "http-response set-header X-G 6"),
                   "v6") == "reload"
    assert agent.worker_pid() != pid
    assert get(fe)[1]["x-g"] == "6"


def _keepalive_bodies(port: int, n: int) -> Counter[str]:
    """``n`` GETs on one client connection (HAProxy reuses server connections from its 2nd)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        seen: Counter[str] = Counter()
        for _ in range(n):
            conn.request("GET", "/")
            seen[conn.getresponse().read().decode()] += 1
        return seen
    finally:
        conn.close()


def _server_row(agent: AgentProcess, target: str) -> dict[str, Any]:
    row = agent.call("stats", agent.compute).get(target)
    assert row is not None, target
    return row


def test_runtime_added_http_member_is_reloaded_from_file_and_reuses_connections(
        agent: AgentProcess, backends: Any) -> None:
    agent.stop()
    agent.env["LBAAS_AGENT_RELOAD_QUIET"] = "0.5"
    agent.start()
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    m1, m2 = f"m1 127.0.0.1:{a.port}", f"m2 127.0.0.1:{b.port}"
    agent.apply(haproxy_cfg(fe, [m1]), "u1")
    pid = agent.worker_pid()
    pushed = agent.call("push", agent.compute,
                        {"files": {"haproxy.cfg": haproxy_cfg(fe, [m1, m2])}}, "u2")
    assert pushed["applied"] == "runtime"
    assert _keepalive_bodies(fe, 2) == Counter({"member-a": 1, "member-b": 1})  # at once
    # HAProxy 2.6 gives a runtime-added server no connection reuse, so the agent reloads on
    # its own once changes pause: the same config, now file-born, reuses server connections.
    assert wait_for(lambda: agent.worker_pid() != pid, timeout=10)
    assert agent.call("status", agent.compute)["digest"] == "u2"
    assert _keepalive_bodies(fe, 20) == Counter({"member-a": 10, "member-b": 10})
    row = _server_row(agent, "pool-1/m2")
    assert row.get("reuse", 0) >= 8, row
    # A member change that adds nothing (a weight) does not reload again.
    pid = agent.worker_pid()
    assert agent.call("push", agent.compute, {"files": {"haproxy.cfg": haproxy_cfg(
        fe, [m1, f"{m2} weight 2"])}}, "u3")["applied"] == "runtime"
    time.sleep(1.5)
    assert agent.worker_pid() == pid


def test_reload_keeps_serving(agent: AgentProcess, backends: Any) -> None:
    a = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"]), "r0")
    with Probe(fe) as probe:
        pids = set()
        for i in range(1, 4):
            cfg = haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"], f"http-response set-header X-G {i}")
            agent.apply(cfg, f"r{i}")
            pids.add(agent.worker_pid())
        assert probe.wait_more(5)
    assert probe.failures == []
    assert probe.ok > 20
    assert len(pids) == 3
    assert get(fe)[1]["x-g"] == "3"


def test_restarted_agent_reports_digest_and_serves_last_config(agent: AgentProcess,
                                                               backends: Any) -> None:
    a = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"]), "keep-me")
    assert agent.proc is not None
    agent.proc.terminate()
    agent.proc.wait(15)
    # SIGTERM to the agent stopped HAProxy too (before the helper's clean-up could).
    assert haproxy_pids(agent.base) == set()
    with pytest.raises(OSError):
        get(fe, timeout=1)
    agent.stop()

    agent.start()

    status = agent.call("status", agent.compute)
    assert status == {"digest": "keep-me", "haproxy_running": True, "amphora_id": "amp-test"}
    assert get(fe)[0] == "member-a"


def test_refused_runtime_change_falls_back_to_reload(agent: AgentProcess, backends: Any) -> None:
    # Dynamic servers in HAProxy 2.6 refuse the `cookie` keyword (used for session persistence).
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    m1, m2 = f"m1 127.0.0.1:{a.port} cookie m1", f"m2 127.0.0.1:{b.port} cookie m2"
    agent.apply(haproxy_cfg(fe, [m1]), "c1")
    pid = agent.worker_pid()

    cfg = haproxy_cfg(fe, [m1, m2])
    result = agent.call("push", agent.compute, {"files": {"haproxy.cfg": cfg}}, "c2")

    assert result == {"digest": "c2", "applied": "reload"}
    assert agent.worker_pid() != pid
    assert set(_bodies(fe, 6)) == {"member-a", "member-b"}


def test_runtime_change_refused_by_the_check_is_undone(tmp_path: Any, pki: Any,
                                                      backends: Any) -> None:
    """Server-line changes go through the runtime API while ``haproxy -c`` checks the file; if
    the check refuses it, the agent reloads the unchanged active config: nothing of it stays."""
    fake = tmp_path / "haproxy-refusing"
    fake.write_text(
        "#!/bin/sh\n"
        'for a; do [ "$a" = -c ] || continue\n'
        '  grep -q refused-by-check "$LBAAS_CONF_DIR/haproxy.cfg" || continue\n'
        '  echo "[ALERT] refused by the test"; exit 1\n'
        "done\n"
        f'exec {shutil.which("haproxy")} "$@"\n')
    fake.chmod(0o755)
    agent = AgentProcess(tmp_path / "amp", pki)
    agent.env["LBAAS_HAPROXY_BIN"] = str(fake)
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    try:
        agent.start()
        m1 = f"m1 127.0.0.1:{a.port}"
        agent.apply(haproxy_cfg(fe, [m1]), "u1")
        with pytest.raises(DriverError, match="refused by the test"):
            agent.apply(haproxy_cfg(fe, [m1, f"refused-by-check 127.0.0.1:{b.port}"]), "u2")
        assert agent.call("status", agent.compute)["digest"] == "u1"
        assert "refused-by-check" not in agent.stats_cli("show stat")
        assert set(_bodies(fe, 8)) == {"member-a"}
    finally:
        agent.stop()


def test_config_that_passes_check_but_cannot_bind_is_rolled_back(agent: AgentProcess,
                                                                  backends: Any) -> None:
    a = backends("member-a")
    fe = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # At first start: nothing served before, nothing served after.
        with pytest.raises(DriverError, match=r"(?i)bind|address"):
            agent.apply(haproxy_cfg(busy, [f"m1 127.0.0.1:{a.port}"]), "busy0")
        assert agent.call("status", agent.compute)["digest"] is None

        agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"]), "ok")
        # At reload: a second frontend on the busy port; the old config keeps serving.
        cfg = haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"]) + (
            f"frontend listener-2\n    bind 127.0.0.1:{busy}\n    default_backend pool-1\n")
        with pytest.raises(DriverError, match=r"(?i)bind|address") as err:
            agent.apply(cfg, "busy1")
        assert "listener-2" in str(err.value) and "listener-1" not in str(err.value)

    assert agent.call("status", agent.compute) == {
        "digest": "ok", "haproxy_running": True, "amphora_id": "amp-test"}
    assert get(fe)[0] == "member-a"
    assert "listener-2" not in (agent.base / "conf" / "haproxy.cfg").read_text()
    # And the next good bundle still reloads fine.
    cfg = haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"], "http-response set-header X-G ok")
    assert agent.call("push", agent.compute, {"files": {"haproxy.cfg": cfg}}, "ok2") == {
        "digest": "ok2", "applied": "reload"}
    assert get(fe)[1]["x-g"] == "ok"


def test_killed_agent_leaves_haproxy_serving_and_restarted_agent_adopts_it(
        agent: AgentProcess, backends: Any) -> None:
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    m1, m2 = f"m1 127.0.0.1:{a.port}", f"m2 127.0.0.1:{b.port}"
    agent.apply(haproxy_cfg(fe, [m1]), "k1")
    before = agent.worker_pid()
    assert agent.proc is not None
    with Probe(fe) as probe:
        agent.proc.kill()  # no SIGTERM handler runs: HAProxy is not the agent's to take down
        agent.proc.wait()
        assert probe.wait_more(20)

        agent.start()

        assert probe.wait_more(20)
    assert probe.failures == []
    assert agent.call("status", agent.compute) == {
        "digest": "k1", "haproxy_running": True, "amphora_id": "amp-test"}
    # It serves the active config already: adopted as it is, not reloaded for nothing.
    assert haproxy_pids(agent.base) == {before}
    # The new agent drives it: a runtime change, then a reload.
    pushed = agent.call("push", agent.compute, {"files": {"haproxy.cfg": haproxy_cfg(
        fe, [m1, m2])}}, "k2")
    assert pushed == {"digest": "k2", "applied": "runtime"}
    assert wait_for(lambda: set(_bodies(fe, 6)) == {"member-a", "member-b"})
    pushed = agent.call("push", agent.compute, {"files": {"haproxy.cfg": haproxy_cfg(
        fe, [m1, m2], "http-response set-header X-G 3")}}, "k3")
    assert pushed == {"digest": "k3", "applied": "reload"}
    assert get(fe)[1]["x-g"] == "3"
    assert wait_for(lambda: haproxy_pids(agent.base) == {agent.worker_pid()})


def test_haproxy_that_dies_is_restarted_with_the_active_config(agent: AgentProcess,
                                                               backends: Any) -> None:
    a = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{a.port}"]), "w1")
    daemon = int((agent.base / "run" / "haproxy.pid").read_text().split()[0])
    os.kill(daemon, signal.SIGKILL)

    assert wait_for(lambda: int((agent.base / "run" / "haproxy.pid").read_text()) != daemon)
    assert wait_for(lambda: get(fe)[0] == "member-a")
    assert agent.call("status", agent.compute) == {
        "digest": "w1", "haproxy_running": True, "amphora_id": "amp-test"}


def test_bundle_files_are_found_through_conf_dir_and_a_change_reloads(agent: AgentProcess) -> None:
    fe = free_port()
    cfg = haproxy_cfg(fe, [], 'errorfile 503 "${LBAAS_CONF_DIR}/errors/503.http"')

    def page(text: str) -> str:
        return (f"HTTP/1.0 503 Service Unavailable\r\nContent-Length: {len(text)}\r\n"
                f"Content-Type: text/plain\r\n\r\n{text}")

    assert agent.call("push", agent.compute, {"files": {
        "haproxy.cfg": cfg, "errors/503.http": page("sorry-1")}}, "e1")["applied"] == "start"
    assert _status_body(fe) == (503, "sorry-1")

    result = agent.call("push", agent.compute, {"files": {
        "haproxy.cfg": cfg, "errors/503.http": page("sorry-2")}}, "e2")

    assert result == {"digest": "e2", "applied": "reload"}
    assert _status_body(fe) == (503, "sorry-2")


def _status_body(port: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()
