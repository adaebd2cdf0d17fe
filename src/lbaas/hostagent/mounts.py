"""A host-agent started in a namespace of its own (the lab): sysfs of its own, netns shared.

``ip netns exec`` would give the host-agent a private mount namespace with a /sys for its
network namespace, but the namespaces it then makes with ``ip netns add`` would be pinned there
only: the rest of the machine would see empty files under /run/netns, and ``ip netns pids`` or
``ip netns delete`` run from there would miss them. So the lab starts the host-agent with
``nsenter --net`` (same mount namespace as the machine), and the host-agent does the rest
itself: it keeps a handle on the machine's mount namespace, makes a private one with its own
/sys (``private_sysfs``), and pins namespaces through the handle (``netlink.NETNS_MOUNT``).
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 2


def private_sysfs() -> str:
    """Unshare the mount namespace, remount /sys for this network namespace; return a path to
    the machine's mount namespace (for ``nsenter --mount``). Call before any thread starts."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle = os.open("/proc/self/ns/mnt", os.O_RDONLY)  # kept open for the process's life
    os.set_inheritable(handle, True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "mount --make-rslave /")
    check(libc.umount2(b"/sys", MNT_DETACH), "umount /sys")
    check(libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None), "mount sysfs")
    return f"/proc/{os.getpid()}/fd/{handle}"
