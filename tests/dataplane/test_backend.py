"""The demo backend server (loopback, no root) and ``lbaas backend`` on a managed subnet.

The server echoes what reached it (whoami-style): its name, its address, the client's, then
the request line and headers as received; ``/healthcheck`` answers 200 or, switched down, 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lbaas.drivers.local import names
from lbaas.drivers.local.network import LocalNetwork
from lbaas.main.backend import port_id, remove_backend_netns
from lbaas.settings import load_settings
from lbaas.store import db, seed
from lbaas.store import tables as t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(address: str, port: int, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {address}:{port}")


@pytest.fixture
def demo() -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lbaas.demo.backend_server", "--address",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        _wait_port("127.0.0.1", port, proc)
        yield port
    finally:
        proc.terminate()
        assert proc.wait(5) == 0  # SIGTERM is a clean stop


def _req(conn: http.client.HTTPConnection, method: str, path: str,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_demo_backend_answers_and_toggles_health(demo: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", demo, timeout=5)
    # One keep-alive connection carries every request.
    status, body = _req(conn, "GET", "/")
    assert status == 200 and body.startswith("backend 127.0.0.1\n")
    sock = conn.sock
    assert _req(conn, "GET", "/healthcheck") == (200, "ok\n")
    assert _req(conn, "POST", "/healthcheck/down")[0] == 200
    assert _req(conn, "GET", "/healthcheck") == (503, "down\n")
    status, body = _req(conn, "GET", "/")
    assert status == 200 and body.startswith("backend 127.0.0.1\n")  # still serves traffic
    assert _req(conn, "POST", "/healthcheck/up")[0] == 200
    assert _req(conn, "GET", "/healthcheck") == (200, "ok\n")
    assert conn.sock is sock
    conn.close()


def test_demo_backend_echoes_every_request_like_whoami(demo: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", demo, timeout=5)
    for method, path in (("GET", "/images/a.png?size=2"), ("DELETE", "/any/thing"),
                         ("PUT", "/")):
        status, body = _req(conn, method, path, {"X-Forwarded-For": "203.0.113.7",
                                                 "X-SSL-Client-CN": "alice"})
        port = conn.sock.getsockname()[1]
        assert status == 200
        head, _, request = body.partition("\n\n")
        assert head.splitlines() == ["backend 127.0.0.1", f"server: 127.0.0.1:{demo}",
                                     f"client: 127.0.0.1:{port}"]
        lines = request.splitlines()
        assert lines[0] == f"{method} {path} HTTP/1.1"
        assert {"X-Forwarded-For: 203.0.113.7", "X-SSL-Client-CN: alice",
                f"Host: 127.0.0.1:{demo}"} <= set(lines[1:])
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    conn.close()


@pytest.mark.parametrize("module", ["lbaas.demo.backend_server", "lbaas.demo.udp_echo"])
def test_demo_servers_stop_cleanly_on_repeated_signals(module: str) -> None:
    """``kill %1`` of an ``lbaas backend`` job signals the server twice (the shell's signal to
    the group, and the one ``lbaas backend`` forwards): one clean stop, no traceback."""
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", module, "--address", "127.0.0.1",
                                 "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            time.sleep(0.0005)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0 and err == "", (proc.returncode, err)


def test_demo_backend_control_socket(tmp_path: Path) -> None:
    """The health check switched over the unix socket ``lbaas backend ctl`` uses."""
    from lbaas.main.backend_ctl import request

    port, ctl = _free_port(), tmp_path / "ctl.sock"
    proc = subprocess.Popen([sys.executable, "-m", "lbaas.demo.backend_server", "--address",
                             "127.0.0.1", "--port", str(port), "--control-socket", str(ctl)],
                            stdout=subprocess.DEVNULL)
    try:
        _wait_port("127.0.0.1", port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        assert request(ctl, "POST", "/healthcheck/down") == (200, "down\n")
        assert _req(conn, "GET", "/healthcheck") == (503, "down\n")
        assert request(ctl, "GET", "/healthcheck") == (503, "down\n")
        assert request(ctl, "POST", "/healthcheck/up") == (200, "ok\n")
        assert _req(conn, "GET", "/healthcheck") == (200, "ok\n")
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    assert not ctl.exists()  # removed on a clean stop


def test_demo_backend_honours_connection_close(demo: int) -> None:
    with socket.create_connection(("127.0.0.1", demo), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\nbackend 127.0.0.1\n" in data and data.endswith(b"Connection: close\n")


def test_demo_backend_pipelines_and_skips_bodies(demo: int) -> None:
    with socket.create_connection(("127.0.0.1", demo), timeout=5) as s:
        s.sendall(b"POST /healthcheck/down HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /healthcheck HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 \d+ [A-Za-z ]+", data)
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 503 Service Unavailable",
                        b"HTTP/1.1 200 OK"]  # and HTTP/1.0 without keep-alive closes
    assert data.endswith(b"\n\nGET / HTTP/1.0\n")


# --- lbaas backend (root) ---------------------------------------------------------------------

@pytest.fixture
def site(dp: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    subnet = dp.make_subnet()
    prefix = subnet.cidr.rsplit(".", 1)[0]
    name = f"dp-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    config = tmp_path / "lbaas.toml"
    config.write_text(
        f"[networking]\nnetworks = [{{name = '{name}', subnet_name = '{name}-subnet', "
        f"cidr = '{subnet.cidr}', gateway_ip = '{prefix}.1', allocation_start = '{prefix}.10', "
        f"allocation_end = '{prefix}.200'}}]\n")
    settings = load_settings(config, {"data_dir": str(tmp_path / "data")})
    real = subnet.__class__(network_id=seed.network_id(name), subnet_id=seed.subnet_id(
        f"{name}-subnet"), cidr=subnet.cidr, gateway_ip=f"{prefix}.1")
    info = {"config": config, "settings": settings, "subnet": real, "name": f"{name}-subnet",
            "prefix": prefix, "procs": []}
    before = dp.host_state()
    # The subnet is managed before any probe, so no test packet can leave the machine.
    asyncio.run(LocalNetwork(settings.data_dir / "network").ensure_subnet(real))
    yield info
    for proc in info["procs"]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    addresses = [f"{prefix}.{n}" for n in (20, 250)]
    for address in addresses:
        asyncio.run(remove_backend_netns(address))
    asyncio.run(LocalNetwork(settings.data_dir / "network").remove_subnet(real))
    our = {names.bridge_name(real.network_id)} | {names.backend_netns(a) for a in addresses} \
        | {names.backend_host_leg(a) for a in addresses}
    dp.assert_no_leftovers(before, our, [subnet.cidr])


def _backend(site: dict[str, Any], address: str, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbaas.main.backend", "--config", str(site["config"]),
         "--data-dir", str(site["settings"].data_dir), "--subnet", site["name"],
         "--address", address, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    site["procs"].append(proc)
    return proc


def _ctl(site: dict[str, Any], address: str, action: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lbaas.main.backend", "ctl", "--data-dir",
         str(site["settings"].data_dir), "--address", address, action],
        capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


def test_lbaas_backend_runs_on_subnet_and_cleans_up(site: dict[str, Any], dp: Any) -> None:
    address = f"{site['prefix']}.20"
    proc = _backend(site, address, "--port", "8080")
    assert proc.stdout is not None and "lbaas backend:" in proc.stdout.readline()
    _wait_port(address, 8080, proc)  # from the host, through the subnet's bridge
    assert dp.fetch_in_netns(None, f"http://{address}:8080/").startswith(
        f"200 backend {address}\n")
    ns = names.backend_netns(address)
    # Its health check switched through the data directory's unix socket, not the network.
    health = f"http://{address}:8080/healthcheck"
    said = f"backend {address}: GET /healthcheck"
    assert _ctl(site, address, "down") == (0, f"{said} now answers 503 down\n")
    assert dp.fetch_in_netns(None, health).startswith("ERR HTTP Error 503")
    assert _ctl(site, address, "status") == (0, f"{said} answers 503 down\n")
    assert _ctl(site, address, "up") == (0, f"{said} now answers 200 ok\n")
    assert dp.fetch_in_netns(None, health) == "200 ok\n"
    assert ns in dp.sh("ip", "netns", "list")
    engine = db.make_engine(site["settings"].effective_database_url)
    with engine.connect() as conn:
        reserved = conn.execute(select(t.ip_allocation).where(
            t.ip_allocation.c.port_id == port_id(site["subnet"], address))).first()
    assert reserved is not None and reserved.ip_address == address

    # The same address again, by another run: refused while the first one serves.
    again = _backend(site, address)
    assert again.wait(20) == 2 and "already used" in again.communicate()[1]
    assert dp.fetch_in_netns(None, f"http://{address}:8080/").startswith("200 ")
    outside = _backend(site, "10.0.0.5")
    assert outside.wait(20) == 2 and "not in subnet" in outside.communicate()[1]
    gateway = _backend(site, f"{site['prefix']}.1")
    assert gateway.wait(20) == 2 and "gateway" in gateway.communicate()[1]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    code, out = _ctl(site, address, "status")
    assert code == 1 and "no demo backend" in out
    assert ns not in dp.sh("ip", "netns", "list")
    assert names.backend_host_leg(address) not in dp.sh("ip", "-o", "link")
    with engine.connect() as conn:
        assert conn.execute(select(t.port).where(
            t.port.c.id == port_id(site["subnet"], address))).first() is None
    engine.dispose()


def test_lbaas_backend_outside_allocation_pool_is_allowed(site: dict[str, Any],
                                                          dp: Any) -> None:
    address = f"{site['prefix']}.250"  # in the CIDR, outside the pool: nothing to reserve
    proc = _backend(site, address, "--port", "8081")
    assert proc.stdout is not None and "lbaas backend:" in proc.stdout.readline()
    _wait_port(address, 8081, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert names.backend_netns(address) not in dp.sh("ip", "netns", "list")


# --- demo backends behind a real amphora (root, haproxy) --------------------------------------

def _cfg(vip: str, backends: list[str]) -> str:
    servers = [f"    server m{i} {ip}:8080 check inter 200ms fall 1 rise 1"
               for i, ip in enumerate(backends)]
    return "\n".join([
        "global", '    stats socket "${LBAAS_RUN_DIR}/haproxy.sock" mode 600 level admin '
        "expose-fd listeners", "    maxconn 2000",
        "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s",
        "    timeout server 10s",
        "frontend listener-1", f"    bind {vip}:80", "    default_backend pool-1",
        "backend pool-1", "    balance roundrobin", "    option httpchk GET /healthcheck",
        *servers, ""])


def test_demo_backends_behind_an_amphora(dp: Any, tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("needs haproxy")
    from lbaas.certs.ca import CertificateAuthority
    from lbaas.drivers.agent_client import AgentAmphoraDriver
    from lbaas.drivers.base import AgentCredentials, AmphoraSpec, SubnetPlug
    from lbaas.drivers.local.compute import LocalCompute
    from lbaas.main.backend import create_backend_netns

    mgmt, vip_net, member = dp.make_subnet(), dp.make_subnet(), dp.make_subnet()
    network = LocalNetwork(tmp_path / "net")
    short = Path(tempfile.mkdtemp(prefix="lbdp"))  # HAProxy's socket path limit (97)
    compute = LocalCompute(short, network)
    amp_id = str(uuid.uuid4())
    ns = names.amphora_netns(amp_id)
    backends = [dp.host(member, 30), dp.host(member, 31)]
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    client = ca.ensure_client_files("controller", tmp_path / "client")
    cert, key = ca.issue_server(amp_id, dp.host(mgmt, 10))
    vip = dp.host(vip_net, 100)
    spec = AmphoraSpec(amp_id, str(uuid.uuid4()), "STANDALONE", None, vip, vip_net.subnet_id,
                       vip_net.network_id, SubnetPlug(mgmt, dp.host(mgmt, 10)),
                       SubnetPlug(vip_net, dp.host(vip_net, 11)),
                       AgentCredentials(ca.ca_pem, cert, key))
    before = dp.host_state()
    servers: list[subprocess.Popen[bytes]] = []

    async def build() -> None:
        info = await compute.create_amphora(spec)
        await network.plug_vip(spec, info)
        await network.plug_subnets(info, [SubnetPlug(member, dp.host(member, 20))])
        for ip in backends:
            bns = await create_backend_netns(network, member, ip)
            servers.append(subprocess.Popen(
                ["ip", "netns", "exec", bns, sys.executable, "-m", "lbaas.demo.backend_server",
                 "--address", ip, "--port", "8080"], stdout=subprocess.DEVNULL))
        driver = AgentAmphoraDriver(str(client.ca_file), str(client.cert_file),
                                    str(client.key_file))
        try:
            assert await driver.apply(info, {"files": {"haproxy.cfg": _cfg(vip, backends)}},
                                      "d1") == "d1"
        finally:
            await driver.aclose()

    def bodies(n: int) -> set[str]:
        return {dp.fetch_in_netns(None, f"http://{vip}/").split("\n", 1)[0] for _ in range(n)}

    try:
        asyncio.run(build())
        want = {f"200 backend {ip}" for ip in backends}
        assert dp.until(lambda: bodies(4) == want), bodies(4)  # round robin over both
        # The demo backend's health toggle takes it out of the pool, and back.
        # (from the amphora's data namespace, where its member legs are)
        assert dp.sh("ip", "netns", "exec", names.data_netns_of(ns), sys.executable, "-c",
                     "import urllib.request as u; print(u.urlopen(u.Request("
                     f"'http://{backends[0]}:8080/healthcheck/down', method='POST')).status)"
                     ).strip() == "200"
        assert dp.until(lambda: bodies(4) == {f"200 backend {backends[1]}"}), bodies(4)
    finally:
        for server in servers:
            server.terminate()
            server.wait(5)
        for ip in backends:
            asyncio.run(remove_backend_netns(ip))
        asyncio.run(compute.delete_amphora(ns))
        for subnet in (mgmt, vip_net, member):
            asyncio.run(network.remove_subnet(subnet))
        shutil.rmtree(short, ignore_errors=True)
    ours = {ns, *(names.bridge_name(s.network_id) for s in (mgmt, vip_net, member)),
            *(names.backend_netns(ip) for ip in backends),
            *(names.backend_host_leg(ip) for ip in backends)}
    dp.assert_no_leftovers(before, ours, [mgmt.cidr, vip_net.cidr, member.cidr])

