"""``agent/netns.py``: processes and sockets land in the data namespace, the agent stays put.

Needs root (a throwaway namespace); the whole agent with ``--data-netns`` runs in
tests/dataplane (every amphora there has two namespaces).
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from lbaas.agent.netns import DataNamespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


@pytest.fixture
def space() -> Iterator[str]:
    name = "lbt-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "addr", "add", "10.77.0.1/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def own_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def test_children_run_in_the_namespace_and_the_agent_does_not(space: str) -> None:
    ns = DataNamespace(space)
    home = own_netns()
    try:
        out = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                             text=True, check=True, preexec_fn=ns.preexec()).stdout
        assert "10.77.0.1/32" in out
        assert own_netns() == home
    finally:
        ns.close()


def test_sockets_are_made_there_and_the_thread_comes_back(space: str) -> None:
    ns = DataNamespace(space)
    home = own_netns()
    try:
        with ns.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setblocking(True)
            sock.bind(("10.77.0.1", 0))  # only that namespace has this address
        assert own_netns() == home
        with pytest.raises(OSError), socket.socket() as plain:
            plain.bind(("10.77.0.1", 0))
        ns.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1\n")
        inside = subprocess.run(["ip", "netns", "exec", space, "sysctl", "-n",
                                 "net.ipv4.ip_forward"], capture_output=True, text=True)
        assert inside.stdout.strip() == "1"
    finally:
        ns.close()


def test_without_a_name_nothing_changes() -> None:
    ns = DataNamespace(None)
    assert ns.preexec() is None
    with ns.entered():
        pass
    with pytest.raises(ValueError):
        DataNamespace("../etc")
