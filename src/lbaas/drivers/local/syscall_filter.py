"""A seccomp filter for a confined amphora: the system calls that could undo ``confine.py``.

The agent keeps CAP_SYS_ADMIN for ``setns(2)`` (agent/netns.py), and CAP_SYS_ADMIN also allows
unmounting the covers, remounting the host read-write, mounting a ``devtmpfs`` or a cgroup v1
hierarchy (``release_agent``). This filter, installed before the agent starts and inherited by
everything it runs, refuses those calls with EPERM whatever the capabilities: the mount family,
namespace creation by ``unshare``, ptrace and cross-process memory access, module loading,
kexec, ``open_by_handle_at``, BPF, the kernel keyring, swap, host names (the UTS namespace is
the host's), ``perf_event_open``, ``fanotify_init``, io_uring. ``setns`` stays allowed: the
agent can name only its own namespaces (confine.py).

x86_64 only (the numbers are that table's); x32 and i386 calls are refused outright. On another
architecture ``install`` reports False and nothing is filtered.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06

REFUSED_X86_64 = {
    "ptrace": 101, "pivot_root": 155, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "kexec_load": 246,
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
    "perf_event_open": 298, "fanotify_init": 300, "open_by_handle_at": 304,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438,
    "mount_setattr": 442,
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(refused: list[int]) -> bytes:
    """The classic BPF: other architectures and x32 refused, ``refused`` refused, the rest
    allowed."""
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    n = len(refused)
    code = [_insn(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
            # to the final deny (n refused checks + 3 more instructions ahead) if not x86_64
            _insn(BPF_JEQ_K, 0, n + 3, AUDIT_ARCH_X86_64),
            _insn(BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
            _insn(BPF_JGE_K, n + 1, 0, X32_SYSCALL_BIT)]
    for i, number in enumerate(refused):
        code.append(_insn(BPF_JEQ_K, n - i, 0, number))
    code += [_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), _insn(BPF_RET_K, 0, 0, deny)]
    return b"".join(code)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> bool:
    """Filter this thread and everything it starts from now on; False if not x86_64."""
    if platform.machine() != "x86_64":
        return False
    code = program(sorted(REFUSED_X86_64.values()))
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")
    return True
