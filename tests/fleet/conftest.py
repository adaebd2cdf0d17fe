"""A 3-host lab (``lbaas lab up``) and an ``lbaas serve`` pointed at it, for the fleet tests.

The lab's ranges are fixed (10.213.0.0/16), so one lab runs at a time on a machine: the fixture
holds ``/tmp/lbaas-fleet-lab.lock`` for its whole life. Each test gets a fresh lab and a fresh
data directory; afterwards ``lab down`` must leave no namespace, link or process behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator

import pytest
from fleet_lab import FleetLab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fleet/" in str(item.fspath):
            item.add_marker(pytest.mark.fleet)


@pytest.fixture
def lab() -> Iterator[FleetLab]:
    yield from _lab(3)


@pytest.fixture
def flat_lab() -> Iterator[FleetLab]:
    """Two hosts, ``lab-public`` a flat provider network (``lab up --flat-public``)."""
    yield from _lab(2, "--flat-public")


def _lab(hosts: int, *lab_args: str) -> Iterator[FleetLab]:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, bridges, VXLAN)")
    for program in ("haproxy", "keepalived", "ip", "bridge"):
        if shutil.which(program) is None:
            pytest.skip(f"needs {program}")
    fd = os.open("/tmp/lbaas-fleet-lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    the_lab = FleetLab()
    try:
        the_lab.up(hosts=hosts, lab_args=lab_args)
        yield the_lab
    finally:
        try:
            the_lab.down()
        finally:
            os.close(fd)
    leftovers = the_lab.leftovers()
    assert not leftovers, f"lab down left these behind: {leftovers}"
    the_lab.cleanup()
