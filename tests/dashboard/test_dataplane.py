"""The dashboard on the real data plane: ``lbaas serve`` as root with amphorae (namespaces,
HAProxy) and two demo backends, on three networks of this test's own (random unused
10.24x.y.0/24 prefixes, names unique to the run), so it needs no lock on the default networks.

In Chromium: the five-step wizard creates a load balancer with two members that reaches
ACTIVE and answers through its VIP from both backends; turning one backend's health check
off turns its member red on the live map without a reload; delete with cascade empties the
list (and the amphora's namespace goes).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from servers import LBAAS, Server
from wizard_steps import Wizard, create, fill

from conftest import open_dashboard
from lbaas.drivers.local import names
from lbaas.store import seed
from net_prefixes import network_entry, unused_prefixes

pytestmark = pytest.mark.slow
LBS = "/v2/lbaas/loadbalancers"
ERROR_FILL = "rgb(247, 201, 197)"  # .map .node.st-error rect


class Site:
    def __init__(self) -> None:
        tag = f"dsh{os.getpid() % 10000}{random.randint(0, 99)}"
        self.nets = {kind: f"{tag}-{kind}" for kind in ("pub", "priv", "mgmt")}
        self.prefix = dict(zip(self.nets, unused_prefixes(3), strict=True))
        entries = ", ".join(network_entry(self.nets[k], self.prefix[k]) for k in self.nets)
        self.server = Server(f"[networking]\nmanagement_network = '{self.nets['mgmt']}'\n"
                             f"networks = [{entries}]\n[controller]\ndrivers = 'local'\n")
        self.backends = [f"{self.prefix['priv']}.20", f"{self.prefix['priv']}.21"]
        self.lb: dict[str, Any] | None = None

    def subnet_id(self, kind: str) -> str:
        return seed.subnet_id(f"{self.nets[kind]}-subnet")

    def ours(self) -> set[str]:
        return ({names.bridge_name(seed.network_id(n)) for n in self.nets.values()}
                | {names.backend_netns(a) for a in self.backends}
                | {names.backend_host_leg(a) for a in self.backends})

    def wait(self, lb_id: str, wanted: str | None, timeout: float = 90) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.server.call("GET", f"{LBS}/{lb_id}")
            lb = body["loadbalancer"] if status == 200 else None
            seen = lb["provisioning_status"] if lb else None
            if seen == wanted:
                return lb
            assert seen != "ERROR", self.server.log()
            assert time.monotonic() < deadline, f"still {seen}:\n{self.server.log()}"
            time.sleep(0.2)

    def members(self, lb_id: str) -> dict[str, str]:
        """address -> member id."""
        pools = self.server.ok("GET", f"/v2/lbaas/pools?loadbalancer_id={lb_id}")["pools"]
        return {m["address"]: m["id"] for p in pools
                for m in self.server.ok("GET", f"/v2/lbaas/pools/{p['id']}/members")["members"]}

    def health(self, address: str, state: str) -> None:
        """``lbaas backend ctl --address A down|up`` (over the backend's unix socket)."""
        out = subprocess.run([LBAAS, "backend", "ctl", "--config", str(self.server.config),
                              "--data-dir", str(self.server.data), "--address", address, state],
                             capture_output=True, text=True, timeout=30, check=False,
                             env=self.server.env)
        assert out.returncode == 0, out.stderr

    def ensure_lb(self) -> dict[str, Any]:
        """The wizard's load balancer, or the same tree made through the API."""
        if self.lb is None:
            made = self.server.ok("POST", LBS, {"loadbalancer": {
                "name": "web", "vip_subnet_id": self.subnet_id("pub"), "listeners": [{
                    "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                        "name": "pool1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                        "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1,
                                          "max_retries": 1, "url_path": "/healthcheck"},
                        "members": [{"address": a, "protocol_port": 80,
                                     "subnet_id": self.subnet_id("priv")}
                                    for a in self.backends]}}]}})["loadbalancer"]
            self.lb = self.wait(made["id"], "ACTIVE")
        assert self.lb is not None
        return self.lb


def _links_and_netns() -> set[str]:
    links = {ln.split(":")[1].strip().split("@")[0] for ln in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()}
    netns = {ln.split()[0] for ln in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.splitlines()}
    return links | netns


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, veths, bridges)")
    for tool in ("haproxy", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    s = Site()
    try:
        s.server.start()
        for address in s.backends:
            s.server.backend(f"{s.nets['priv']}-subnet", address)
        yield s
    finally:
        errors = s.server.close()
    assert not errors, errors
    left = s.ours() & _links_and_netns()
    assert not left, f"left behind: {left}"


def through_vip(vip: str, requests: int = 20) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(requests):
        try:
            with urllib.request.urlopen(f"http://{vip}/", timeout=3) as resp:
                seen[resp.read().decode().splitlines()[0]] += 1  # "backend <address>"
        except OSError as exc:
            seen[f"error {exc}"] += 1
    return seen


def member_node(page: Any, member_id: str) -> Any:
    return page.locator(f".map .node[data-kind=member][data-id='{member_id}']")


def test_wizard_creates_a_load_balancer_that_serves_traffic(
        page: Any, site: Site, shot: Callable[..., None]) -> None:
    open_dashboard(page, site.server)
    fill(page, Wizard(name="web", vip_subnet_id=site.subnet_id("pub"),
                      member_subnet_id=site.subnet_id("priv"),
                      members=[(a, 80, 1) for a in site.backends]))
    lb_id = create(page)
    site.lb = site.wait(lb_id, "ACTIVE")
    assert site.lb is not None
    badges = page.locator(".page-head .badges")
    expect(badges).to_contain_text("ACTIVE", timeout=20_000)
    seen = through_vip(site.lb["vip_address"])
    assert set(seen) == {f"backend {a}" for a in site.backends}, seen
    for member_id in site.members(lb_id).values():
        expect(member_node(page, member_id)).to_have_attribute("data-status", "ONLINE",
                                                               timeout=30_000)
    # some traffic while the page samples its statistics, for the charts
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            through_vip(site.lb["vip_address"], 5)  # type: ignore[index]
            time.sleep(0.05)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        expect(page.locator("#chart-traffic [data-series=in]")).not_to_have_text(
            "0 B", timeout=20_000)
        page.wait_for_timeout(10_000)
    finally:
        stop.set()
        worker.join(10)
    shot(page, "loadbalancer-live", full_page=True)


def test_a_backend_going_down_turns_its_member_red_without_a_reload(
        page: Any, site: Site, shot: Callable[..., None]) -> None:
    lb = site.ensure_lb()
    members = site.members(lb["id"])
    down, up = site.backends[1], site.backends[0]
    open_dashboard(page, site.server, f"#/loadbalancers/{lb['id']}")
    for member_id in members.values():
        expect(member_node(page, member_id)).to_have_attribute("data-status", "ONLINE",
                                                               timeout=30_000)
    page.evaluate("window.lbaasSamePage = 'yes'")
    site.health(down, "down")
    try:
        node = member_node(page, members[down])
        expect(node).to_have_attribute("data-status", "ERROR", timeout=30_000)
        assert node.locator("rect").evaluate("r => getComputedStyle(r).fill") == ERROR_FILL
        expect(node.locator(".node-status")).to_have_text("ERROR")
        expect(member_node(page, members[up])).to_have_attribute("data-status", "ONLINE")
        assert page.evaluate("window.lbaasSamePage") == "yes"  # no reload happened
        shot(page, "loadbalancer-member-down")
    finally:
        site.health(down, "up")
    expect(member_node(page, members[down])).to_have_attribute("data-status", "ONLINE",
                                                               timeout=30_000)


def test_delete_with_cascade_empties_the_list(page: Any, site: Site) -> None:
    lb = site.ensure_lb()
    amphorae = site.server.ok("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")
    namespaces = {names.amphora_netns(a["id"]) for a in amphorae["amphorae"]}
    assert namespaces and namespaces <= _links_and_netns()
    open_dashboard(page, site.server)
    row = page.locator(f"#lb-table tr[data-id='{lb['id']}']")
    row.get_by_role("button", name="Delete web").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#lb-table tr.empty")).to_have_text("No load balancers yet.",
                                                            timeout=90_000)
    assert site.server.ok("GET", LBS)["loadbalancers"] == []
    site.lb = None
    assert site.server.call("GET", f"{LBS}/{lb['id']}")[0] == 404
    deadline = time.monotonic() + 30
    while namespaces & _links_and_netns():  # the amphora went with it
        assert time.monotonic() < deadline, namespaces & _links_and_netns()
        time.sleep(0.2)
