"""Thin async wrappers around iproute2's ``ip`` command for the local drivers.

We shell out to ``ip`` (JSON output with ``-j``) rather than speak netlink directly: it is
always installed and its behaviour is what operators know. A process spawn costs 10-40 ms on a
busy 2-core host, so steps that go together run as one ``ip -batch -`` and existence checks read
``/run/netns`` and ``/sys/class/net`` instead. Failures raise ``DriverError`` with ip's message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from typing import Any

from lbaas.drivers.base import DriverError

IP = "ip"
log = logging.getLogger(__name__)


NETNS_DIR = "/run/netns"  # where ``ip netns add`` pins namespaces
# A mount namespace to pin namespaces in (``nsenter --mount=...``); None: this process's. A
# host-agent in a private mount namespace sets it (hostagent/mounts.py).
NETNS_MOUNT: str | None = None
SYS_NET = "/sys/class/net"  # the host's links (this process runs in the host namespace)


async def run(*args: str, check: bool = True, stdin: str | None = None) -> tuple[int, str, str]:
    """Run a command; return (rc, stdout, stderr). Raise DriverError if ``check`` and rc != 0."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(None if stdin is None else stdin.encode())
    rc = proc.returncode or 0
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s%s -> %d", " ".join(args),
                  f" <<< {stdin.strip()!r}" if stdin else "", rc)
    if check and rc != 0:
        raise DriverError(f"{' '.join(args)}: {err.decode(errors='replace').strip()}")
    return rc, out.decode(errors="replace"), err.decode(errors="replace")


async def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    prefix = [IP] + (["-n", ns] if ns else [])
    return (await run(*prefix, *args, check=check))[1]


async def batch(commands: list[str], ns: str | None = None) -> None:
    """Several ``ip`` commands (one per line, without ``ip``) in one process; stops at the
    first failure (DriverError naming it)."""
    if commands:
        await run(IP, *(["-n", ns] if ns else []), "-batch", "-", stdin="\n".join(commands) + "\n")


async def ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = await ip("-j", *args, ns=ns)
    return json.loads(out) if out.strip() else []


async def json_cmd(*args: str) -> list[dict[str, Any]]:
    """Any iproute2 command with ``-j`` among ``args`` (``bridge -j fdb show``...)."""
    out = (await run(*args))[1]
    return json.loads(out) if out.strip() else []


async def netns_add(name: str, check: bool = True) -> tuple[int, str, str]:
    """``ip netns add`` (in ``NETNS_MOUNT`` when set)."""
    return await run(*_pin_prefix(), IP, "netns", "add", name, check=check)


async def netns_delete(name: str) -> None:
    await run(*_pin_prefix(), IP, "netns", "delete", name)


def _pin_prefix() -> list[str]:
    return ["nsenter", f"--mount={NETNS_MOUNT}", "--"] if NETNS_MOUNT else []


def family(address_or_cidr: str) -> str:
    return "-6" if ipaddress.ip_network(address_or_cidr, strict=False).version == 6 else "-4"


async def netns_list() -> list[str]:
    out = await ip("netns", "list")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


async def netns_exists(name: str) -> bool:
    if os.path.isdir(NETNS_DIR):
        return "/" not in name and os.path.exists(os.path.join(NETNS_DIR, name))
    return name in await netns_list()


async def netns_pids(name: str) -> list[int]:
    rc, out, _ = await run(IP, "netns", "pids", name, check=False)
    return [int(p) for p in out.split()] if rc == 0 else []


async def links(ns: str | None = None) -> dict[str, dict[str, Any]]:
    """Interfaces by name (in ``ns`` or the host)."""
    return {item["ifname"]: item for item in await ip_json("link", "show", ns=ns)}


async def link_exists(name: str, ns: str | None = None) -> bool:
    if ns is None and os.path.isdir(SYS_NET):
        return "/" not in name and os.path.exists(os.path.join(SYS_NET, name))
    rc, _, _ = await run(*([IP] + (["-n", ns] if ns else [])), "link", "show", "dev", name,
                         check=False)
    return rc == 0


async def addresses(dev: str, ns: str | None = None) -> set[str]:
    """Global addresses on ``dev`` as ``addr/prefixlen`` strings."""
    result: set[str] = set()
    for item in await ip_json("addr", "show", "dev", dev, ns=ns):
        for info in item.get("addr_info", []):
            if info.get("scope") == "global":
                result.add(f"{info['local']}/{info['prefixlen']}")
    return result


async def set_addresses(dev: str, wanted: set[str], ns: str | None = None,
                        keep: frozenset[str] = frozenset(), fresh: bool = False,
                        before: tuple[str, ...] = (), then: tuple[str, ...] = ()) -> None:
    """Make the global addresses on ``dev`` exactly ``wanted`` (``addr/prefixlen``), leaving
    any address in ``keep`` (bare addresses, any prefix: another daemon manages them).
    ``fresh``: ``dev`` was just created (no address to read); ``before``/``then``: more
    ``ip`` commands for the same batch."""
    have = set() if fresh else await addresses(dev, ns)
    lines = [f"addr del {extra} dev {dev}" for extra in sorted(have - wanted)
             if extra.split("/")[0] not in keep]
    lines += [f"addr replace {missing} dev {dev}{' nodad' if ':' in missing else ''}"
              for missing in sorted(wanted - have)]
    await batch([*before, *lines, *then], ns=ns)


async def delete_link(name: str, ns: str | None = None) -> None:
    """Delete a link if present (deleting one end of a veth removes its peer)."""
    if ns is None and not await link_exists(name):
        return
    rc, _, err = await run(*([IP] + (["-n", ns] if ns else [])), "link", "del", "dev", name,
                           check=False)
    if rc != 0 and "Cannot find device" not in err and "does not exist" not in err:
        raise DriverError(f"ip link del {name}: {err.strip()}")


async def ensure_veth(ns: str, leg: str, host: str, bridge: str, fresh_ns: bool = False,
                      up_leg: bool = True, mtu: int | None = None) -> bool:
    """A veth with ``leg`` inside ``ns`` and ``host`` enslaved to ``bridge``, both up (``leg``
    only if ``up_leg``); True if it was created now (``fresh_ns``: ``ns`` was just made).
    ``mtu``: both ends' MTU when created (an overlay bridge carries less than 1500)."""
    created = fresh_ns or not await link_exists(leg, ns)
    if created:
        # A host end left over from an interrupted attempt would make the add fail.
        await delete_link(host)
        size = f" mtu {mtu}" if mtu else ""
        await batch([f"link add {host}{size} type veth peer name {leg}{size} netns {ns}",
                     f"link set dev {host} master {bridge} up"])
    else:
        await ip("link", "set", "dev", host, "master", bridge, "up")
    if up_leg:
        await ip("link", "set", "dev", leg, "up", ns=ns)
    return created
