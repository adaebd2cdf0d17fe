"""Thin async wrappers around iproute2's ``ip`` command for the local drivers.

We shell out to ``ip`` (JSON output with ``-j``) rather than speak netlink directly: it is
always installed, its behaviour is what operators know, and each call is a few milliseconds.
Failures raise ``DriverError`` carrying ip's message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

from lbaas.drivers.base import DriverError

IP = "ip"


async def run(*args: str, check: bool = True) -> tuple[int, str, str]:
    """Run a command; return (rc, stdout, stderr). Raise DriverError if ``check`` and rc != 0."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    rc = proc.returncode or 0
    if check and rc != 0:
        raise DriverError(f"{' '.join(args)}: {err.decode(errors='replace').strip()}")
    return rc, out.decode(errors="replace"), err.decode(errors="replace")


async def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    prefix = [IP] + (["-n", ns] if ns else [])
    return (await run(*prefix, *args, check=check))[1]


async def ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = await ip("-j", *args, ns=ns)
    return json.loads(out) if out.strip() else []


def family(address_or_cidr: str) -> str:
    return "-6" if ipaddress.ip_network(address_or_cidr, strict=False).version == 6 else "-4"


async def netns_list() -> list[str]:
    out = await ip("netns", "list")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


async def netns_exists(name: str) -> bool:
    return name in await netns_list()


async def netns_pids(name: str) -> list[int]:
    rc, out, _ = await run(IP, "netns", "pids", name, check=False)
    return [int(p) for p in out.split()] if rc == 0 else []


async def links(ns: str | None = None) -> dict[str, dict[str, Any]]:
    """Interfaces by name (in ``ns`` or the host)."""
    return {item["ifname"]: item for item in await ip_json("link", "show", ns=ns)}


async def link_exists(name: str, ns: str | None = None) -> bool:
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
                        keep: frozenset[str] = frozenset()) -> None:
    """Make the global addresses on ``dev`` exactly ``wanted`` (``addr/prefixlen``), leaving
    any address in ``keep`` (bare addresses, any prefix: another daemon manages them)."""
    have = await addresses(dev, ns)
    for extra in have - wanted:
        if extra.split("/")[0] in keep:
            continue
        await ip("addr", "del", extra, "dev", dev, ns=ns)
    for missing in sorted(wanted - have):
        extra_args = ["nodad"] if ":" in missing else []
        await ip("addr", "replace", missing, "dev", dev, *extra_args, ns=ns)


async def delete_link(name: str, ns: str | None = None) -> None:
    """Delete a link if present (deleting one end of a veth removes its peer)."""
    rc, _, err = await run(*([IP] + (["-n", ns] if ns else [])), "link", "del", "dev", name,
                           check=False)
    if rc != 0 and "Cannot find device" not in err and "does not exist" not in err:
        raise DriverError(f"ip link del {name}: {err.strip()}")


async def ensure_veth(ns: str, leg: str, host: str, bridge: str) -> None:
    """A veth with ``leg`` inside ``ns`` and ``host`` enslaved to ``bridge``, both up."""
    if not await link_exists(leg, ns):
        # A host end left over from an interrupted attempt would make the add fail.
        await delete_link(host)
        await ip("link", "add", host, "type", "veth", "peer", "name", leg, "netns", ns)
    await ip("link", "set", "dev", host, "master", bridge, "up")
    await ip("link", "set", "dev", leg, "up", ns=ns)
