"""The amphora's data namespace: where HAProxy, keepalived, nftables and the member probes run.

An amphora has two network namespaces, as upstream's has (its ``amphora-haproxy``): the agent
and the management leg in one, the VIP and member legs in the other, so that nothing a tenant
configures can reach the management network. The agent (supervisor and worker) stays in the
management namespace; what touches tenant networks is put in the data namespace:

- processes (``haproxy -D``, keepalived, ``nft``) through ``preexec``: ``setns(2)`` in the
  child between fork and exec, so the program itself runs there and so do its children, then
  the capability bounding set cut to ``CHILD_KEEP`` (no CAP_SYS_ADMIN: no further setns);
- sockets (the UDP/SCTP pools' probes) through ``socket()``: the worker's thread enters the
  namespace only for the ``socket(2)`` call (a socket keeps the namespace it was made in) and
  comes back before anything else runs.

Key choice: ``setns`` through ctypes (Python 3.11 has no ``os.setns``) instead of
``ip netns exec``: no extra process per launch, and the supervisor, which imports none of this,
stays small (decision 0011). The mount namespace is not changed (``ip netns exec`` remounts
/sys): none of these programs reads /sys/class/net. Without a name (the agent run alone, as in
tests/agent) everything stays in the agent's own namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
PR_CAPBSET_DROP = 24
# What HAProxy (binds, then drops to nobody in a chroot; raises its fd limit), keepalived (VRRP,
# addresses, its check script) and nft need. Everything else, CAP_SYS_ADMIN above all (setns,
# mount), CAP_DAC_OVERRIDE/DAC_READ_SEARCH, ptrace and module loading, leaves the bounding set
# in the child, so the programs that parse tenant traffic cannot enter another namespace,
# undo the agent's mount confinement (drivers/local/confine.py) or read other roots' files.
CHILD_KEEP = frozenset({
    0,   # chown: HAProxy's stats socket
    5,   # kill
    6, 7,  # setgid, setuid: HAProxy's drop to nobody
    10, 11, 12, 13,  # net_bind_service, net_broadcast, net_admin, net_raw
    14,  # ipc_lock
    18,  # sys_chroot: HAProxy's empty chroot
    23, 24,  # sys_nice (keepalived's priority), sys_resource (HAProxy's ulimit-n)
})

try:  # the process's libc, for the calls Python 3.11 does not wrap (also prctl in haproxy.py)
    LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    LIBC = None


try:
    _LAST_CAP = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
except (OSError, ValueError):
    _LAST_CAP = 40  # CAP_CHECKPOINT_RESTORE, the last one as of Linux 6.x


class NamespaceError(OSError):
    """The data namespace cannot be entered."""


def _drop_capabilities() -> None:
    """Cut this process's capability bounding set to ``CHILD_KEEP`` (before an exec: a root
    program's capabilities are then at most those)."""
    assert LIBC is not None
    for cap in range(_LAST_CAP + 1):
        if cap not in CHILD_KEEP and LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(err, f"drop capability {cap}: {os.strerror(err)}")


def _setns(fd: int) -> None:
    if LIBC is None or LIBC.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno() if LIBC is not None else 0
        raise NamespaceError(err, f"setns: {os.strerror(err) if err else 'no libc'}")


class DataNamespace:
    """``name``: a namespace under /run/netns (None: the agent's own)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or None
        self._target: int | None = None
        self._home: int | None = None
        if self.name is not None:
            if "/" in self.name or self.name in (".", ".."):
                raise ValueError(f"bad namespace name {self.name!r}")
            self._target = os.open(Path(NETNS_DIR) / self.name, os.O_RDONLY | os.O_CLOEXEC)
            self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def preexec(self, *more: Callable[[], None]) -> Callable[[], None] | None:
        """A ``preexec_fn`` that moves the child into the namespace, then runs ``more``; None
        when there is nothing to do (keeps the fast spawn path)."""
        target = self._target
        if target is None and not more:
            return None

        def child() -> None:
            if target is not None:
                _setns(target)
                _drop_capabilities()
            for step in more:
                step()

        return child

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread in the namespace for a few synchronous calls (never across an await)."""
        if self._target is None or self._home is None:
            yield
            return
        _setns(self._target)
        try:
            yield
        finally:
            _setns(self._home)

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A non-blocking socket in the namespace."""
        with self.entered():
            sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        return sock

    def write_sysctl(self, path: str, value: str) -> None:
        """Write ``/proc/sys/...`` as seen in the namespace (net.* files are per namespace)."""
        with self.entered():
            Path(path).write_text(value)

    def close(self) -> None:
        for fd in (self._target, self._home):
            if fd is not None:
                os.close(fd)
        self._target = self._home = None
