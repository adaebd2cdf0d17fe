"""HAProxy as a daemon without a master, driven in-process through lbaas.agent.haproxy.HAProxy:
it outlives whoever started it, a new HAProxy object (a restarted agent) adopts it, and any
process can stop it, draining old daemons included."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import (
    Backend,
    free_port,
    get,
    haproxy_cfg,
    haproxy_pids,
    kill_haproxies,
    needs_haproxy,
    wait_for,
)

from lbaas.agent.haproxy import HAProxy, HAProxyError, cli

pytestmark = needs_haproxy


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    base = tmp_path / "amp"
    (base / "conf").mkdir(parents=True)
    (base / "run").mkdir(mode=0o700)
    try:
        yield base
    finally:
        kill_haproxies(base)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend("member-a")
    yield b
    b.close()


def _haproxy(base: Path) -> HAProxy:
    return HAProxy(base / "conf", base / "run")


def _write(base: Path, cfg: str) -> None:
    (base / "conf" / "haproxy.cfg").write_text(cfg)


def _show_info_pid(h: HAProxy) -> int:
    text = asyncio.run(cli(h.stats_sock, "show info"))
    return int(next(ln for ln in text.splitlines() if ln.startswith("Pid:")).split()[1])


def _ppid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("PPid:")).split()[1])


def test_daemon_outlives_its_starter_and_a_new_one_adopts_it_with_the_config_on_disk(
        base: Path, backend: Backend) -> None:
    fe = free_port()
    member = [f"m1 127.0.0.1:{backend.port}"]
    _write(base, haproxy_cfg(fe, member, "http-response set-header X-G 1"))
    first = _haproxy(base)
    asyncio.run(first.start())
    pid = _show_info_pid(first)
    assert get(fe)[1]["x-g"] == "1"
    assert _ppid(pid) != os.getpid()  # not our child: nothing ties it to the agent process

    _write(base, haproxy_cfg(fe, member, "http-response set-header X-G 2"))
    second = _haproxy(base)  # a restarted agent: knows nothing but the directories
    assert not second.running
    asyncio.run(second.start())

    assert second.running
    assert get(fe)[1]["x-g"] == "2"  # what serves is the config on disk
    new = _show_info_pid(second)
    assert new != pid
    assert wait_for(lambda: haproxy_pids(base) == {new})  # the adopted one finished and left


def test_daemon_serving_the_active_config_is_adopted_without_a_reload(
        base: Path, backend: Backend) -> None:
    fe = free_port()
    _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]))
    asyncio.run(_haproxy(base).start())
    pid = int((base / "run" / "haproxy.pid").read_text())

    second = _haproxy(base)
    asyncio.run(second.start())

    assert second.running
    assert haproxy_pids(base) == {pid}
    assert _show_info_pid(second) == pid
    asyncio.run(second.reload())  # and it is second's to drive
    assert _show_info_pid(second) != pid
    assert get(fe)[0] == "member-a"


def test_pid_file_names_a_live_daemon_throughout_reloads(base: Path, backend: Backend) -> None:
    # keepalived's track script (render.keepalived.CHECK_SCRIPT, fall 1) tests
    # /proc/$(cat haproxy.pid)/exe once a second: one miss moves the VIP.
    fe = free_port()
    _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]))
    h = _haproxy(base)
    asyncio.run(h.start())
    misses: list[str] = []
    samples = [0]
    done = threading.Event()

    def track() -> None:
        while not done.is_set():
            seen = _read(h.pid_file)
            if not Path(f"/proc/{seen}/exe").exists() and _read(h.pid_file) == seen:
                misses.append(seen)  # (a changed file means it was replaced meanwhile: fine)
            samples[0] += 1

    tracker = threading.Thread(target=track)
    tracker.start()
    try:
        for _ in range(15):
            asyncio.run(h.reload())
    finally:
        done.set()
        tracker.join()
    assert misses == []
    assert samples[0] > 1000
    assert get(fe)[0] == "member-a"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "(missing)"


def test_another_process_stops_the_serving_and_the_draining_daemons(base: Path) -> None:
    hung = socket.socket()  # a member that accepts and never answers: the request stays open
    hung.bind(("127.0.0.1", 0))
    hung.listen()
    fe = free_port()
    _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{hung.getsockname()[1]}"]))
    h = _haproxy(base)
    asyncio.run(h.start())
    old = _show_info_pid(h)
    client = socket.create_connection(("127.0.0.1", fe), timeout=5)
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        hung.settimeout(5)
        upstream, _ = hung.accept()  # HAProxy forwarded it: a request in flight

        asyncio.run(h.reload())

        new = _show_info_pid(h)
        assert new != old
        assert haproxy_pids(base) == {old, new}  # the old one drains the open request
        # Every runtime command reaches the new daemon, none the draining one.
        assert {_show_info_pid(h) for _ in range(20)} == {new}

        asyncio.run(_haproxy(base).stop())  # a process that started neither

        assert haproxy_pids(base) == set()
        assert _closed(client)  # the draining daemon is gone, its connection with it
        with pytest.raises(OSError):
            get(fe, timeout=1)
        upstream.close()
    finally:
        client.close()
        hung.close()


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_refused_reload_leaves_the_old_daemon_serving(base: Path, backend: Backend) -> None:
    fe = free_port()
    _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]))
    h = _haproxy(base)
    asyncio.run(h.start())
    pid = _show_info_pid(h)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]) +
               f"frontend listener-2\n    bind 127.0.0.1:{busy}\n    default_backend pool-1\n")

        with pytest.raises(HAProxyError, match="Address already in use"):
            asyncio.run(h.reload())

    assert h.running
    assert _show_info_pid(h) == pid
    assert haproxy_pids(base) == {pid}
    assert get(fe)[0] == "member-a"


def test_a_reused_pid_in_the_pid_file_is_neither_adopted_nor_stopped(
        base: Path, backend: Backend) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (base / "run" / "haproxy.pid").write_text(f"{stranger.pid}\n")
        fe = free_port()
        _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]))
        h = _haproxy(base)
        assert not h.running

        asyncio.run(h.start())

        assert get(fe)[0] == "member-a"
        assert _show_info_pid(h) != stranger.pid
        asyncio.run(h.stop())
        assert haproxy_pids(base) == set()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_daemon_that_dies_is_not_running(base: Path, backend: Backend) -> None:
    fe = free_port()
    _write(base, haproxy_cfg(fe, [f"m1 127.0.0.1:{backend.port}"]))
    h = _haproxy(base)
    asyncio.run(h.start())
    assert h.running
    os.kill(_show_info_pid(h), 9)

    assert wait_for(lambda: not h.running)  # also while it is an unreaped zombie
    with pytest.raises(HAProxyError, match="not running"):
        asyncio.run(h.reload())
    asyncio.run(h.start())
    assert get(fe)[0] == "member-a"

