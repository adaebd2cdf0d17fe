"""Confine an amphora agent: its own mount and PID namespaces, a trimmed capability bounding set.

Run as ``python -m lbaas.drivers.local.confine --home H --hide D --netns N... -- AGENT ARGV``
(by ``compute.py``, inside the amphora's management namespace). Before the agent runs:

- a new mount namespace (propagation private) where ``D`` (the directory holding every amphora
  home and the controller's or host agent's own secrets: ``pki/ca.key``, ``heartbeat_key``,
  ``secrets_key``, the other amphorae's ``tls/``) is covered by an empty tmpfs, ``H`` (the
  amphora's own home, under ``D``) bind-mounted back at its place, and ``/run/netns`` covered by
  a tmpfs holding only the amphora's own namespaces (``N``), bind-mounted back from the fds
  opened before the cover;
- a new PID namespace with its own ``/proc``: other processes' ``/proc/<pid>/ns/*``,
  ``/proc/<pid>/root`` and ``/proc/<pid>/environ`` are out of reach;
- the capability bounding set cut to what the agent and its children need (``AGENT_KEEP``):
  no module loading, ptrace, raw I/O, mknod, ``open_by_handle_at`` (DAC_READ_SEARCH), BPF...

The agent keeps CAP_SYS_ADMIN, because it enters its data namespace with ``setns(2)`` for each
HAProxy, keepalived and nft launch and each probe socket (agent/netns.py), and ``setns`` needs
it; what it launches there drops it (agent/netns.py's ``CHILD_KEEP``). CAP_SYS_ADMIN could undo
the mounts: ``syscall_filter.py`` refuses the calls that would (mount family, unshare, ptrace,
modules...), for the agent and everything it starts.

Process tree: this process (the pid the controller records, in the host's PID namespace)
unshares, then becomes ``timeout --foreground 0`` (a signal forwarder, no time limit); its child
is PID 1 of the new namespace, covers, trims and filters, then becomes the agent. Signals to
the recorded pid reach the agent; when the agent ends, the kernel ends what is left in the
namespace (HAProxy, keepalived), and ``timeout`` exits with the agent's status. A new agent
starts clean, in a new namespace.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Sequence

from lbaas.drivers.local import syscall_filter

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_RDONLY, MS_REMOUNT = 0x1, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_CAPBSET_DROP = 24
TIMEOUT = "timeout"

# capability numbers (linux/capability.h)
CAPS = {"chown": 0, "dac_override": 1, "fowner": 3, "kill": 5, "setgid": 6, "setuid": 7,
        "setpcap": 8, "net_bind_service": 10, "net_broadcast": 11, "net_admin": 12,
        "net_raw": 13, "ipc_lock": 14, "sys_chroot": 18, "sys_admin": 21, "sys_nice": 23,
        "sys_resource": 24}
# what the agent keeps: setns (sys_admin), dropping its children's caps (setpcap), files under
# its home (chown, dac_override, fowner), and what HAProxy/keepalived/nft need (agent/netns.py)
AGENT_KEEP = frozenset(CAPS.values())

_LIBC = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(value: str | None) -> bytes | None:
        return value.encode() if value is not None else None
    _check(_LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                       enc(data)), f"mount {target}")


def _bind_fd(fd: int, target: str) -> None:
    """Bind what ``fd`` names (a directory or an nsfs file) onto ``target``."""
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)


def drop_bounding_set(keep: frozenset[int]) -> None:
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        if cap not in keep:
            _check(_LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")


DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}
# /proc files a root process without CAP_SYS_ADMIN could still misuse (sysrq: reboot the host)
PROC_MASKED = ("sysrq-trigger", "kcore", "keys", "timer_list")
# /proc directories made read-only (kernel.*, vm.* sysctls, IRQ affinity...); /proc/sys/net
# stays writable: it is per network namespace and the agent sets ip_forward in its data one
PROC_READ_ONLY = ("sys", "bus", "fs", "irq")
KEPT_WRITABLE = ("/proc",)


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, its nosuid/nodev/noexec flags) of this namespace, outermost first."""
    seen: dict[str, int] = {}
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            options = fields[5].split(",")
            flags = (MS_NOSUID if "nosuid" in options else 0) | \
                (MS_NODEV if "nodev" in options else 0) | (MS_NOEXEC if "noexec" in options else 0)
            seen[point] = flags
    return sorted(seen.items(), key=lambda item: item[0].count("/"))


def _read_only(point: str, flags: int) -> None:
    _mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)


def _all_read_only(writable: Sequence[str]) -> None:
    """Every mount of this namespace read-only but ``writable`` and what lies under them (a
    root process without CAP_SYS_ADMIN cannot remount: the host's files stay as they are)."""
    for point, flags in _mount_points():
        if any(os.path.commonpath([point, keep]) == keep for keep in writable):
            continue
        try:
            _read_only(point, flags)
        except FileNotFoundError:  # under a cover (the host's /run/netns entries)
            continue
        except OSError:
            if point == "/":
                raise
            # a mount hidden under a cover resolves to the cover's, already handled: a
            # failure elsewhere is a mount we cannot see through; make sure it is not needed
            if os.path.exists(point) and os.path.ismount(point):
                raise


def _minimal_dev() -> None:
    fds = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES
           if os.path.exists(f"/dev/{name}")}
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name, fd in fds.items():
        os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
        _bind_fd(fd, f"/dev/{name}")
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"/dev/{name}")


def _fresh_proc() -> None:
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if os.path.isdir(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _read_only(path, MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount("/proc/sys/net", "/proc/sys/net", None, MS_BIND)  # (a bind inherits ro: undo it)
    _mount(None, "/proc/sys/net", None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_MASKED:
        if os.path.exists(f"/proc/{name}"):
            _mount("/dev/null", f"/proc/{name}", None, MS_BIND)


def cover(home: str, hide: Sequence[str], netns: Sequence[str]) -> None:
    """In this (new) mount namespace: each of ``hide`` empty but for ``home``, /run/netns only
    ``netns``, /proc this PID namespace's, /dev a handful of devices, everything else
    read-only but ``home``."""
    home_fd = os.open(home, os.O_PATH | os.O_DIRECTORY)
    ns_fds = {name: os.open(os.path.join("/run/netns", name), os.O_RDONLY) for name in netns}
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for directory in sorted(hide, key=len):  # outermost first: an inner one is then gone
        if os.path.isdir(directory):
            _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
    os.makedirs(home, exist_ok=True)
    _bind_fd(home_fd, home)
    os.chdir(home)  # the old working directory's ``..`` would still reach the covered tree
    _mount("tmpfs", "/run/netns", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           "mode=0755,size=16k")
    for name, fd in ns_fds.items():
        path = os.path.join("/run/netns", name)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o444))
        _bind_fd(fd, path)
    _minimal_dev()
    _fresh_proc()
    for fd in (home_fd, *ns_fds.values()):
        os.close(fd)
    _all_read_only([home, *KEPT_WRITABLE])


def enter(home: str, hide: Sequence[str], netns: Sequence[str], argv: Sequence[str]) -> None:
    """The outer step: new mount and PID namespaces for what this process starts next, then
    become ``timeout --foreground 0`` (coreutils; no time limit), a 1 MB process that forwards
    SIGTERM/SIGINT/SIGHUP to its child and exits with its status. Its child, PID 1 of the new
    namespace, runs ``--inner``."""
    _check(_LIBC.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    inner = [sys.executable, "-m", "lbaas.drivers.local.confine", "--inner", "--home", home,
             *(arg for directory in hide for arg in ("--hide", directory)),
             *(arg for name in netns for arg in ("--netns", name)), "--", *argv]
    os.execvp(TIMEOUT, [TIMEOUT, "--foreground", "0", *inner])


def confine_and_exec(home: str, hide: Sequence[str], netns: Sequence[str],
                     argv: Sequence[str]) -> None:
    """The inner step, as PID 1 of the new PID namespace: cover, trim, filter, then become the
    agent (PID 1 too: it reaps orphans as the subreaper it already is, and when it ends the
    kernel ends everything left in the namespace)."""
    cover(home, hide, netns)
    drop_bounding_set(AGENT_KEEP)
    syscall_filter.install()
    os.execvp(argv[0], list(argv))


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lbaas-confine", description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="the amphora's own directory (kept)")
    parser.add_argument("--hide", action="append", required=True,
                        help="directory to empty (one of them holds --home)")
    parser.add_argument("--netns", action="append", default=[], help="namespace kept visible")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("argv", nargs="+", help="the command to confine (after --)")
    parsed = parser.parse_args(args)
    home, hide = os.path.abspath(parsed.home), [os.path.abspath(h) for h in parsed.hide]
    if "/" in hide:
        parser.error("--hide / would hide the agent itself")
    if not any(os.path.commonpath([home, h]) == h != home for h in hide):
        parser.error("--home must be inside a --hide directory")
    (confine_and_exec if parsed.inner else enter)(home, hide, parsed.netns, parsed.argv)
    return 1  # (both exec)


if __name__ == "__main__":
    sys.exit(main())
