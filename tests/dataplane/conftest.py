"""Fixtures for data-plane tests: root check, private test subnets, leftover checks.

Test subnets are random /24s in 10.250.0.0/16-10.254.0.0/16 with fresh uuids, so parallel runs
(and the service's 172.24.4/24, 10.0.0/24, 198.51.100/24) never collide. ``host_state``
records links, namespaces and routes before a test; ``assert_no_leftovers`` checks that none of
the names and CIDRs a test made remain afterwards (others may be changing the host meanwhile).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from lbaas.drivers.base import SubnetInfo


def _root_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bridges)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    return None


@pytest.fixture
def root() -> None:
    """Skip the test unless it can make namespaces, veths and bridges."""
    reason = _root_reason()
    if reason:
        pytest.skip(reason)


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class HostState:
    links: frozenset[str]
    netns: frozenset[str]
    routes: frozenset[str]


def host_state() -> HostState:
    links = frozenset(line.split(":")[1].strip().split("@")[0]
                      for line in sh("ip", "-o", "link").splitlines())
    netns = frozenset(line.split()[0] for line in sh("ip", "netns", "list").splitlines())
    routes = frozenset(sh("ip", "route", "show", "table", "all").splitlines()
                       + sh("ip", "-6", "route", "show", "table", "all").splitlines())
    return HostState(links, netns, routes)


def assert_no_leftovers(before: HostState, names: Iterable[str], cidrs: Iterable[str]) -> None:
    after = host_state()
    ours = set(names)
    new_links = after.links - before.links
    new_netns = after.netns - before.netns
    new_routes = after.routes - before.routes
    assert not (new_links & ours), f"links left behind: {new_links & ours}"
    assert not (new_netns & ours), f"namespaces left behind: {new_netns & ours}"
    prefixes = [c.split("::/")[0] + "::" if ":" in c else c.rsplit(".", 1)[0] + "."
                for c in cidrs]
    stale = {r for r in new_routes if any(p in r for p in prefixes)}
    assert not stale, f"routes left behind: {stale}"


_used_blocks: set[tuple[int, int]] = set()


def make_subnet(gateway: bool = True, management: bool = False) -> SubnetInfo:
    """A fresh random 10.25x.y.0/24 operator subnet on its own network (gateway .1)."""
    while True:
        block = (random.randint(250, 254), random.randint(0, 255))
        if block not in _used_blocks:
            _used_blocks.add(block)
            break
    cidr = f"10.{block[0]}.{block[1]}.0/24"
    gw = f"10.{block[0]}.{block[1]}.1" if gateway else None
    return SubnetInfo(network_id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()), cidr=cidr,
                      gateway_ip=gw, host_access=True, management=management)


def make_subnet6() -> SubnetInfo:
    """A fresh random fdXX:....::/64 subnet on its own network (gateway ::1)."""
    words = [random.randint(0, 0xFFFF) for _ in range(3)]
    prefix = "fd{:02x}:{:x}:{:x}:{:x}".format(random.randint(0x10, 0xFF), *words)
    return SubnetInfo(network_id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()),
                      cidr=f"{prefix}::/64", gateway_ip=f"{prefix}::1", host_access=True)


def host(subnet: SubnetInfo, n: int) -> str:
    if ":" in subnet.cidr:
        return subnet.cidr.split("::/")[0] + f"::{n:x}"
    return subnet.cidr.rsplit(".", 1)[0] + f".{n}"


FETCH = """
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        sys.stdout.write(f"{r.status} " + r.read().decode())
except Exception as exc:
    sys.stdout.write(f"ERR {exc}")
"""


def fetch_in_netns(ns: str | None, url: str, timeout: float = 2.0) -> str:
    """GET ``url`` from inside ``ns`` (or the host); returns "<status> <body>" or "ERR ..."."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return sh(*prefix, sys.executable, "-c", FETCH, url, str(timeout))


def until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds; False if it never did within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class DataPlane:
    """The helpers above, handed to tests through the ``dp`` fixture."""

    sh = staticmethod(sh)
    host_state = staticmethod(host_state)
    assert_no_leftovers = staticmethod(assert_no_leftovers)
    make_subnet = staticmethod(make_subnet)
    make_subnet6 = staticmethod(make_subnet6)
    host = staticmethod(host)
    fetch_in_netns = staticmethod(fetch_in_netns)
    until = staticmethod(until)


@pytest.fixture
def dp(root: None) -> DataPlane:
    return DataPlane()
