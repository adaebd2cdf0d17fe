"""Stop a daemon a previous agent left running: its pid file is ours, so is its process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)


def stop_stale(pid_file: Path, program: bytes, marker: str, wait: float = 5.0) -> None:
    """SIGTERM the pid in ``pid_file`` if its command line names ``program`` and ``marker``
    (a path only our instance uses), then wait up to ``wait`` seconds for it to go."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if program not in cmdline or marker.encode() not in cmdline:
        return
    log.warning("stopping stale %s %d", program.decode(), pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
