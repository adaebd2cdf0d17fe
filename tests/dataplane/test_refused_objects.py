"""Issue 10 item 4, containment on the real data plane: a refused object blocks nothing else.

A real ``lbaas serve`` on its own networks, amphorae whose HAProxy is Debian's behind a wrapper
placed first on PATH: ``haproxy -c`` refuses any configuration naming an address listed in the
wrapper's file, as a future HAProxy rule (or an unloadable certificate) would. Everything else
goes through to the real binary. A member at that address goes ERROR; afterwards a new member
is served, a failover builds a new amphora that serves the rest, and the refused member, once
deleted, is gone. Before containment the later member went ERROR and the failover left the
load balancer in ERROR. Driven through the openstack CLI; the server is stopped and
``lbaas teardown``-ed, and no route or address of its networks is left.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from l7_helpers import (
    Server,
    http_get,
    leftovers,
    own_networks,
    skip_reason,
    start_server,
    stop_server,
)

pytestmark = [pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
              pytest.mark.slow]

WRAPPER = """#!/bin/sh
# Test double around the real haproxy: "-c" refuses a config naming a listed address.
conf=""; checking=""; prev=""
for a; do
  [ "$a" = -c ] && checking=1
  [ "$prev" = -f ] && conf="$a"
  prev="$a"
done
if [ -n "$checking" ] && [ -n "$conf" ] && grep -qFf {refused} "$conf"; then
  echo "[ALERT]    (0) : config : refused by the test's haproxy wrapper"
  exit 1
fi
exec {real} "$@"
"""


@pytest.fixture()
def refused_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``haproxy`` wrapper first on PATH (the server and its agents inherit PATH); returns
    the file of addresses whose configurations its ``-c`` refuses."""
    real = shutil.which("haproxy")
    assert real is not None
    refused = tmp_path / "refused.txt"
    refused.write_text("no-such-address-yet\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "haproxy"
    wrapper.write_text(WRAPPER.replace("{refused}", str(refused)).replace("{real}", real))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return refused


@pytest.fixture()
def server(refused_list: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    toml, subnets = own_networks()
    server = start_server(toml)
    cidrs: list[str] = []
    try:
        cidrs += [server.show("subnet", "show", s)["cidr"] for s in subnets.values()]
        yield server, {**subnets, "net": cidrs[1].rsplit(".", 1)[0]}
    finally:
        stop_server(server)
    assert not leftovers(cidrs), leftovers(cidrs)


def answers(vip: str, n: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        status, body, _ = http_get(f"http://{vip}/", timeout=5)
        out[body.split("\n", 1)[0] if status == 200 else f"HTTP {status}"] += 1  # who answered
    return out


def eventually_served(vip: str, backends: set[str], timeout: float = 30) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = answers(vip, 3 * len(backends))
        if set(seen) == {f"backend {b}" for b in backends}:
            return seen
        assert time.monotonic() < deadline, f"served {dict(seen)}, wanted {sorted(backends)}"
        time.sleep(0.3)


def member(server: Server, subnet: str, address: str) -> dict[str, Any]:
    made = server.show("loadbalancer", "member", "create", "--subnet-id", subnet, "--address",
                       address, "--protocol-port", "80", "pool1")
    server.wait_active("lb1")
    return server.show("loadbalancer", "member", "show", "pool1", made["id"])


def test_a_refused_member_blocks_neither_changes_nor_failover(
        server: tuple[Server, dict[str, str]], refused_list: Path) -> None:
    srv, where = server
    net, priv = where["net"], where["priv"]
    good, later, refused = f"{net}.51", f"{net}.53", f"{net}.66"
    for address in (good, f"{net}.52", later):
        srv.backend(priv, address)
    refused_list.write_text(f" {refused}:\n")
    lb = srv.show("loadbalancer", "create", "--name", "lb1", "--vip-subnet-id", where["pub"])
    srv.wait_active("lb1")
    for step in (["listener", "create", "--name", "l1", "--protocol", "HTTP",
                  "--protocol-port", "80", "lb1"],
                 ["pool", "create", "--name", "pool1", "--lb-algorithm", "ROUND_ROBIN",
                  "--listener", "l1", "--protocol", "HTTP"]):
        srv.openstack("loadbalancer", *step)
        srv.wait_active("lb1")
    for address in (good, f"{net}.52"):
        assert member(srv, priv, address)["provisioning_status"] == "ACTIVE"
    vip = lb["vip_address"]
    eventually_served(vip, {good, f"{net}.52"})
    amp = _amphora(srv, lb["id"])

    # The data plane refuses the configuration with this member: it alone goes ERROR.
    bad = member(srv, priv, refused)
    assert bad["provisioning_status"] == "ERROR"
    assert srv.show("loadbalancer", "show", "lb1")["provisioning_status"] == "ACTIVE"
    assert set(answers(vip, 6)) == {f"backend {good}", f"backend {net}.52"}

    # A later change to the same pool goes through and is served.
    assert member(srv, priv, later)["provisioning_status"] == "ACTIVE"
    eventually_served(vip, {good, f"{net}.52", later})

    # Failover builds a new amphora with everything but the refused member.
    srv.openstack("loadbalancer", "failover", "lb1")
    srv.wait_active("lb1", timeout=120)
    assert _amphora(srv, lb["id"])["id"] != amp["id"]
    eventually_served(vip, {good, f"{net}.52", later})
    shown = srv.show("loadbalancer", "member", "show", "pool1", bad["id"])
    assert shown["provisioning_status"] == "ERROR"

    # The refused member can be deleted like any other.
    srv.openstack("loadbalancer", "member", "delete", "pool1", bad["id"])
    srv.wait_active("lb1")
    listed = srv.openstack("loadbalancer", "member", "list", "pool1", "-f", "value", "-c", "id")
    assert bad["id"] not in listed


def _amphora(srv: Server, lb_id: str) -> dict[str, Any]:
    rows = json.loads(srv.openstack("loadbalancer", "amphora", "list", "--loadbalancer", lb_id,
                                    "-f", "json"))
    [row] = [r for r in rows if r.get("status") == "ALLOCATED"]
    return dict(row)
