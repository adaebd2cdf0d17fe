"""Which process is our HAProxy daemon: shared by ``haproxy.py`` (the worker) and the resident
supervisor, so it imports only ``os``.

Key choice: a pid file alone can name a reused pid; a pid counts as ours only while it is a live
(not zombie) ``haproxy`` whose command line carries our launcher's ``-p`` path.
"""

from __future__ import annotations

import os

from lbaas.agent.layout import HAPROXY_LAUNCH_PID


def launch_pid_arg(run_dir: str) -> str:
    """The ``-p`` argument our daemons are started with: it marks them in /proc."""
    return os.path.abspath(os.path.join(run_dir, HAPROXY_LAUNCH_PID))


def read_pid(path: str | os.PathLike[str]) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_our_haproxy(pid: int, pid_arg: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        if pid_arg.encode() not in args or b"haproxy" not in os.path.basename(args[0]):
            return False
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")
