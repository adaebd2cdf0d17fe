"""The resident supervisor and its on-demand worker, seen from outside: HAProxy keeps serving and
heartbeats keep coming while no worker runs; a client or a crash brings a worker back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import AgentProcess, Pki, free_port, get, haproxy_cfg, wait_for

from lbaas.wire.heartbeat import amphora_key, open_envelope

KEY = "heartbeat-test-key"
IDLE_EXIT = 1.0


class SupervisedAgent(AgentProcess):
    """The agent with a short idle exit and heartbeats to a UDP socket of the test."""

    def __init__(self, base: Path, pki: Pki) -> None:
        super().__init__(base, pki)
        self.beats = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.beats.bind(("127.0.0.1", 0))
        self.beats.settimeout(5)
        key_file = base.parent / "heartbeat.key"
        key_file.write_text(amphora_key(KEY, "amp-test") + "\n")  # its own, not the master
        self.extra_args = ["--idle-exit", str(IDLE_EXIT), "--heartbeat-interval", "0.2",
                           "--heartbeat-key-file", str(key_file),
                           "--heartbeat-target", f"127.0.0.1:{self.beats.getsockname()[1]}"]

    def workers(self) -> list[int]:
        """The supervisor's forked workers (its other children are HAProxy daemons)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            if int(fields[1]) == self.proc.pid and b"lbaas.agent.supervisor" in cmdline \
                    and fields[0] != b"Z":
                found.append(int(entry.name))
        return found

    def heartbeat(self) -> dict[str, Any]:
        """The next heartbeat (drops those already queued)."""
        self.beats.setblocking(False)
        try:
            while True:
                self.beats.recv(65536)
        except BlockingIOError:
            pass
        self.beats.settimeout(5)
        return open_envelope(self.beats.recv(65536), KEY)

    def stop(self) -> None:
        super().stop()
        self.beats.close()


@pytest.fixture
def supervised(tmp_path: Path, pki: Pki) -> Iterator[SupervisedAgent]:
    agent = SupervisedAgent(tmp_path / "amp", pki)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def haproxy_pid(agent: AgentProcess) -> int:
    return int((agent.base / "run" / "haproxy.pid").read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def serve_one_backend(agent: SupervisedAgent, backends: Any) -> int:
    member = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{member.port}"]), "s1")
    assert get(fe)[0] == "member-a"
    return fe


def test_idle_worker_exits_haproxy_serves_and_heartbeats_go_on(supervised: SupervisedAgent,
                                                               backends: Any) -> None:
    fe = serve_one_backend(supervised, backends)
    assert supervised.workers()
    assert wait_for(lambda: not supervised.workers(), IDLE_EXIT + 10)

    assert get(fe)[0] == "member-a"
    beat = supervised.heartbeat()
    assert beat["id"] == "amp-test" and beat["digest"] == "s1"
    assert beat["listeners"]  # from HAProxy's stats socket, with no worker around
    first_seq = beat["seq"]
    assert supervised.heartbeat()["seq"] > first_seq

    # A client brings a worker back; it adopts the running HAProxy rather than restarting it.
    pid = haproxy_pid(supervised)
    assert supervised.call("status", supervised.compute) == {
        "digest": "s1", "haproxy_running": True, "amphora_id": "amp-test"}
    assert supervised.workers()
    assert haproxy_pid(supervised) == pid and get(fe)[0] == "member-a"


def test_crashed_worker_is_replaced_and_haproxy_never_stops(supervised: SupervisedAgent,
                                                            backends: Any) -> None:
    fe = serve_one_backend(supervised, backends)
    [worker] = supervised.workers()
    os.kill(worker, signal.SIGKILL)
    assert get(fe)[0] == "member-a"
    assert wait_for(lambda: supervised.workers() not in ([], [worker]), 10)
    assert supervised.call("status", supervised.compute)["digest"] == "s1"
    assert get(fe)[0] == "member-a"


def test_haproxy_that_dies_without_a_worker_is_restarted(supervised: SupervisedAgent,
                                                         backends: Any) -> None:
    fe = serve_one_backend(supervised, backends)
    assert wait_for(lambda: not supervised.workers(), IDLE_EXIT + 10)
    pid = haproxy_pid(supervised)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: haproxy_pid(supervised) != pid and alive(haproxy_pid(supervised)),
                    10)
    assert wait_for(lambda: _serves(fe), 5)


def test_sigterm_without_a_worker_stops_haproxy(supervised: SupervisedAgent,
                                                backends: Any) -> None:
    serve_one_backend(supervised, backends)
    assert wait_for(lambda: not supervised.workers(), IDLE_EXIT + 10)
    pid = haproxy_pid(supervised)
    assert supervised.proc is not None
    supervised.proc.send_signal(signal.SIGTERM)
    assert supervised.proc.wait(10) == 0
    assert wait_for(lambda: not alive(pid), 5)


def _serves(port: int) -> bool:
    try:
        get(port, timeout=0.5)
    except OSError:
        return False
    return True


def test_supervisor_imports_stay_small() -> None:
    """What keeps the idle amphora small: none of these may load in the resident process."""
    code = ("import sys; import lbaas.agent.supervisor; "
            "print(' '.join(sorted(k for k, v in sys.modules.items() if v is not None)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    heavy = {"asyncio", "ssl", "_ssl", "_hashlib", "logging", "typing", "pathlib", "argparse",
             "json", "enum", "socket", "signal", "subprocess", "threading"}
    assert "lbaas.agent.heartbeat" in loaded
    assert not heavy & loaded, heavy & loaded
