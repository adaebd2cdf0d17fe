"""Who this process is, for leases: a holder name distinct per live process, stable per slot.

Leases (decision 0003) name their holder. Two live processes must never share a name, yet a
restarted process should take its predecessor's leases back at once instead of waiting for
them to expire. Key choice: each process of a role takes the lowest free *slot* on its host and
data directory — an exclusive ``flock`` on ``data_dir/run/<role>-<n>.lock``, which the kernel
releases when the process dies, even by SIGKILL — and its holder is
``<host>:<sha256(data dir)>:<role>-<n>``. Three workers on one host are ``worker-0..2``; the one
systemd restarts after a SIGKILL finds its slot free again and resumes its own leases; a slot
nobody comes back to lets its leases expire (``lease_seconds``) and the others take over.
``lbaas serve`` keeps the slot-less holder it always had.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from dataclasses import dataclass

from lbaas.settings import Settings

MAX_SLOTS = 1024


def place(settings: Settings) -> str:
    """This host and data directory, as 16 hex digits."""
    where = f"{socket.gethostname()}:{settings.data_dir.resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def lease_holder(settings: Settings) -> str:
    """Stable per host and data directory: a restarted process (after SIGKILL) takes its own
    leases back at once, while another process still waits for them to expire."""
    where = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:16]
    return f"{socket.gethostname()[:64]}:{where}"


@dataclass
class Instance:
    role: str
    slot: int
    holder: str
    _fd: int

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def claim_instance(settings: Settings, role: str) -> Instance:
    """Take the lowest free slot of ``role`` here (held until ``release`` or process exit)."""
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(run_dir / f"{role}-{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return Instance(role, slot, f"{lease_holder(settings)}:{role}-{slot}", fd)
    raise RuntimeError(f"more than {MAX_SLOTS} {role} processes on this data directory")
