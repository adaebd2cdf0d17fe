"""The amphora's resident process: holds the API socket, sends heartbeats, forks the worker.

An idle amphora runs two processes: HAProxy (a daemon, no master) and this supervisor. The
worker (``worker.py``: the two-way TLS API, bundles, keepalived, UDP checks) is forked when a
client connects, at start-up, when it crashed (with back-off) and when HAProxy died while a config
is active (its start-up restarts it); it exits after ``idle_exit`` quiet seconds unless it has
standing duties (keepalived, UDP checks, a pending reload).

Key choice: every module imported here stays resident in every amphora, so this file and what it
imports use only small, low-level modules: no asyncio, ssl, logging, typing, pathlib, argparse,
json, or even ``socket`` and ``signal`` (their enums: ~0.9 MB); ``__main__`` validates the
arguments and execs this process with them as ``--key=value``. HMAC-SHA256 for the heartbeats
uses CPython's built-in SHA-256 instead of OpenSSL's, whose libcrypto would add ~4 MB of
resident pages for one hash a second.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]  # see "Key choice" above

import _signal  # noqa: E402
import _socket  # noqa: E402
import errno  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import time  # noqa: E402

from lbaas.agent.haproxy_pids import is_our_haproxy, launch_pid_arg, read_pid  # noqa: E402
from lbaas.agent.heartbeat import HeartbeatSender, parse_target, read_key  # noqa: E402
from lbaas.agent.layout import CONF, HAPROXY_PID, RUN  # noqa: E402
from lbaas.wire.files import HAPROXY_CFG  # noqa: E402

WORKER_STOP_TIMEOUT = 15.0
MAX_BACKOFF = 30.0

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def say(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp},{int(time.time() * 1000) % 1000:03d} INFO lbaas.agent.supervisor {text}",
          file=sys.stderr, flush=True)


def haproxy_pid(run_dir: str) -> int | None:
    """The pid of our live HAProxy daemon (from its pid file), or None."""
    pid = read_pid(os.path.join(run_dir, HAPROXY_PID))
    return pid if pid is not None and is_our_haproxy(pid, launch_pid_arg(run_dir)) else None


def stop_haproxy(run_dir: str, timeout: float = 5.0) -> None:
    pid = haproxy_pid(run_dir)
    if pid is None:
        return
    for sig, wait in ((_signal.SIGTERM, timeout), (_signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and haproxy_pid(run_dir) == pid:
            time.sleep(0.02)
        if haproxy_pid(run_dir) != pid:
            return


def listen(host: str, port: int, patience: float = 10.0) -> _socket.socket:
    """The API's listening socket. A worker orphaned by a killed supervisor may hold the port
    for a moment (it notices within ``worker.WATCH_PERIOD``): retry until ``patience`` runs out."""
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    deadline = time.monotonic() + patience
    while True:
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        sock.listen(128)
        return sock


class Supervisor:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        base = config["base_dir"]
        self.run_dir = os.path.join(base, RUN)
        self.active_cfg = os.path.join(base, CONF, HAPROXY_CFG)
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        self.listener = listen(config["host"], config["port"])
        self.worker: int | None = None
        self.stopping = False
        self.respawn_at: float | None = None  # after a crash (or HAProxy dead): when to retry
        self.backoff = 1.0
        self.heartbeat: HeartbeatSender | None = None
        if config.get("heartbeat_targets"):
            self.heartbeat = HeartbeatSender(
                config["amphora_id"], base, [tuple(t) for t in config["heartbeat_targets"]],
                read_key(config["heartbeat_key_file"]), config["heartbeat_interval"])
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> None:
        _signal.set_wakeup_fd(self.wake_w)
        _signal.signal(_signal.SIGTERM, self._on_stop)
        _signal.signal(_signal.SIGINT, self._on_stop)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)  # wakes select() through the pipe
        say(f"listening on {self.config['host']}:{self.config['port']}")
        self.spawn()  # the worker restores the active config (HAProxy, keepalived, UDP)
        next_beat = time.monotonic()
        interval = self.heartbeat.interval if self.heartbeat else 1.0
        while not self.stopping:
            now = time.monotonic()
            timeout = max(0.0, min(next_beat - now, 1.0))
            watched = [self.wake_r] if self.worker is not None else [self.wake_r, self.listener]
            readable, _, _ = select.select(watched, [], [], timeout)
            if self.wake_r in readable:
                os.read(self.wake_r, 512)
            self.reap()
            if self.stopping:
                break
            if self.worker is None:
                self._maybe_spawn(self.listener in readable)
            now = time.monotonic()
            if now >= next_beat:
                if self.heartbeat is not None:
                    self.heartbeat.beat(haproxy_pid(self.run_dir) is not None)
                next_beat = max(next_beat + interval, now)
        self.shutdown()

    def _maybe_spawn(self, client_waiting: bool) -> None:
        now = time.monotonic()
        if self.respawn_at is not None and now < self.respawn_at:
            return  # back off, even for a client: a crashing worker must not spin
        haproxy_dead = os.path.exists(self.active_cfg) and haproxy_pid(self.run_dir) is None
        if client_waiting or self.respawn_at is not None or haproxy_dead:
            if haproxy_dead and not client_waiting:
                say("HAProxy is not running: starting a worker to restart it")
                self.respawn_at = now + self.backoff  # if it cannot, retry later, not at once
                self.backoff = min(self.backoff * 2, MAX_BACKOFF)
            self.spawn()

    def spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _signal.set_wakeup_fd(-1)
                for sig in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGCHLD):
                    _signal.signal(sig, _signal.SIG_DFL)
                os.close(self.wake_r)
                os.close(self.wake_w)
                from lbaas.agent.worker import run_worker

                code = run_worker(self.config, self.listener, os.getppid())
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        self.worker = pid

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid != self.worker:
                continue
            self.worker = None
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                if haproxy_pid(self.run_dir) is not None:
                    self.respawn_at, self.backoff = None, 1.0
                continue
            if not self.stopping:
                say(f"worker {pid} exited with {code}; a new one in {self.backoff:g} s")
                self.respawn_at = time.monotonic() + self.backoff
                self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def shutdown(self) -> None:
        """The worker stops keepalived and HAProxy on SIGTERM; without one, stop HAProxy here."""
        if self.worker is not None:
            os.kill(self.worker, _signal.SIGTERM)
            deadline = time.monotonic() + WORKER_STOP_TIMEOUT
            while self.worker is not None and time.monotonic() < deadline:
                time.sleep(0.05)
                self.reap()
            if self.worker is not None:
                os.kill(self.worker, _signal.SIGKILL)
                os.waitpid(self.worker, 0)
                self.worker = None
        stop_haproxy(self.run_dir)
        self.listener.close()
        say("stopped")


def parse_config(argv: list[str]) -> dict[str, Any]:
    """``--key=value`` arguments as written by ``__main__`` (already validated there)."""
    config: dict[str, Any] = {"heartbeat_targets": [], "heartbeat_interval": 1.0,
                              "idle_exit": 10.0}
    for arg in argv:
        key, _, value = arg.removeprefix("--").partition("=")
        key = key.replace("-", "_")
        if key == "heartbeat_target":
            config["heartbeat_targets"].append(parse_target(value))
        elif key == "port":
            config[key] = int(value)
        elif key in ("heartbeat_interval", "idle_exit"):
            config[key] = float(value)
        else:
            config[key] = value
    return config


def main() -> int:
    Supervisor(parse_config(sys.argv[1:])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
