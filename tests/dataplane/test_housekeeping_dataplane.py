"""Housekeeping on real amphorae: certificates rotate under traffic, a full resync repairs drift.

One server for the module, configured to rotate every amphora certificate every second (renew
400 days ahead of a 365-day certificate) and to run the full resync every two seconds. A demo
backend on the private subnet sits behind one load balancer; traffic goes from the host to the
VIP with a new connection per request.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from crash_helpers import CrashServer

from lbaas.drivers.local import names

EXTRA = ("[housekeeping]\ncert_rotate_interval = 1.0\ncert_renew_before_days = 400.0\n"
         "full_resync_interval = 2.0\n")


@dataclass
class Site:
    server: CrashServer
    lb_id: str
    vip: str


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return f"{resp.status} {resp.read().decode().strip()}"
    except Exception as exc:
        return f"ERR {exc}"


def _until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    import os

    if os.geteuid() != 0 or shutil.which("haproxy") is None or shutil.which("ip") is None:
        pytest.skip("needs root, iproute2 and haproxy")
    server = CrashServer(EXTRA)
    backend: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        address = f"{server.private_prefix}.50"
        backend = subprocess.Popen(server.argv("backend", "--subnet", server.private_subnet_name,
                                               "--address", address, "--port", "80"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lb_id = server.create_lb("housekeeping")
        assert lb_id is not None
        server.wait_settled()
        code, body = server.api("POST", "/listeners", {"listener": {
            "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}})
        assert code == 201, body
        server.wait_settled()
        code, body = server.api("POST", "/pools", {"pool": {
            "listener_id": body["listener"]["id"], "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN"}})
        assert code == 201, body
        server.wait_settled()
        code, _ = server.api("POST", f"/pools/{body['pool']['id']}/members", {"member": {
            "address": address, "protocol_port": 80}})
        assert code == 201
        server.wait_settled()
        vip = server.api("GET", f"/loadbalancers/{lb_id}")[1]["loadbalancer"]["vip_address"]
        assert _until(lambda: _get(f"http://{vip}/").startswith("200"), 30), \
            _get(f"http://{vip}/")
        yield Site(server, lb_id, vip)
    finally:
        if backend is not None:
            backend.send_signal(signal.SIGTERM)
            backend.wait(20)
        server.close()


def _amphora(site: Site) -> dict[str, str]:
    rows = [dict(r) for r in site.server.amphora_rows()
            if r["load_balancer_id"] == site.lb_id and r["status"] == "ALLOCATED"]
    assert len(rows) == 1
    return rows[0]


def _served_serial(site: Site, mgmt_ip: str) -> int:
    client = site.server.data / "pki" / "client"
    ctx = ssl.create_default_context(cafile=str(client / "ca.pem"))
    ctx.load_cert_chain(client / "controller.pem", client / "controller.key")
    with socket.create_connection((mgmt_ip, 9443), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=mgmt_ip) as tls:
        return int(str(tls.getpeercert()["serialNumber"]), 16)  # type: ignore[index]


def test_certificate_rotation_keeps_traffic_flowing(site: Site) -> None:
    amp = _amphora(site)
    serials = {_served_serial(site, amp["lb_network_ip"])}
    results: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            results.append(_get(f"http://{site.vip}/"))

    worker = threading.Thread(target=traffic)
    worker.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        serials.add(_served_serial(site, amp["lb_network_ip"]))
        time.sleep(0.5)
    stop.set()
    worker.join(10)
    failures = [r for r in results if not r.startswith("200")]
    print(f"rotation: {len(serials)} certificates served, {len(results)} requests, "
          f"{len(failures)} failed")
    assert len(serials) >= 3, "the agent kept serving the same certificate"
    assert len(results) > 50 and failures == [], f"{len(failures)} of {len(results)} failed"
    assert _amphora(site)["cert_expiration"] is not None  # the expiry the agent reported


def test_full_resync_repairs_a_removed_config_and_dead_haproxy(site: Site) -> None:
    amp = _amphora(site)
    agent_dir = site.server.data / "amphorae" / amp["compute_id"] / "agent"
    cfg = agent_dir / "conf" / "haproxy.cfg"
    digest = (agent_dir / "conf" / ".digest").read_text().strip()
    assert digest == amp["active_digest"]
    cfg.unlink()
    haproxy_ns = names.data_netns_of(amp["compute_id"])
    for pid in subprocess.run(["ip", "netns", "pids", haproxy_ns], capture_output=True,
                              text=True).stdout.split():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if cmdline.startswith(b"haproxy") or b"/haproxy\0" in cmdline:
            subprocess.run(["kill", "-9", pid], check=False)
    assert _until(lambda: _get(f"http://{site.vip}/").startswith("ERR"), 5)
    # the agent cannot restart HAProxy without a config; only the controller can repair this
    assert _until(lambda: cfg.exists() and _get(f"http://{site.vip}/").startswith("200"), 30), \
        site.server.log_tail()
    # the bundle can serve a moment before the reconciler records its digest again
    assert _until(lambda: (agent_dir / "conf" / ".digest").read_text().strip()
                  == _amphora(site)["active_digest"], 10), site.server.log_tail()
