"""Host-agents that register themselves (``--controller``, ``[fleet] registration_listen``):
validation, the listener's certificate checks, the fleet following the registrations, ``lbaas
host remove``; and in a lab, hosts that registered take amphorae, while ``[fleet] hosts`` still
works without registration."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fleet_lab import FleetLab, until
from sqlalchemy import Engine, delete, select, update

from lbaas.certs.ca import CertificateAuthority
from lbaas.controller.fleet.hosts import Fleet
from lbaas.controller.fleet.registration import (
    Refused,
    RegistrationListener,
    host_name_of,
    validate,
)
from lbaas.drivers.agent_client import client_ssl_context
from lbaas.hostagent.register import register_once
from lbaas.store import db
from lbaas.store import tables as t
from lbaas.wire.tls import server_ssl_context

GOOD = {"name": "h7", "zone": "az1", "capacity": 20, "address": "10.20.0.17", "port": 9444}


# validation ----------------------------------------------------------------------------------
def test_a_valid_registration_is_accepted() -> None:
    reg = validate(dict(GOOD), "h7")
    assert (reg.name, reg.zone, reg.capacity, reg.endpoint) == ("h7", "az1", 20,
                                                                 "10.20.0.17:9444")
    assert validate({**GOOD, "address": "fd00::7"}, "h7").address == "fd00::7"


@pytest.mark.parametrize("change, message", [
    ({"name": "h8"}, "may register only 'h7'"),
    ({"name": ""}, "name"), ({"name": "a" * 64}, "name"), ({"name": "h7;rm"}, "name"),
    ({"name": 7}, "name"),
    ({"zone": ""}, "zone"), ({"zone": "a b"}, "zone"), ({"zone": "z" * 256}, "zone"),
    ({"capacity": -1}, "capacity"), ({"capacity": 10_001}, "capacity"),
    ({"capacity": "20"}, "capacity"), ({"capacity": True}, "capacity"),
    ({"address": "h7.example"}, "address"), ({"address": "0.0.0.0"}, "address"),
    ({"address": "224.0.0.1"}, "address"), ({"address": None}, "address"),
    ({"port": 0}, "port"), ({"port": 65536}, "port"), ({"port": "9444"}, "port"),
])
def test_an_invalid_registration_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(Refused, match=message):
        validate({**GOOD, **change}, "h7")


def test_a_registration_must_be_an_object() -> None:
    with pytest.raises(Refused, match="JSON object"):
        validate([GOOD], "h7")


def test_only_a_host_agent_certificate_names_a_host() -> None:
    def cert(*cns: str) -> dict[str, Any]:
        return {"subject": tuple((("commonName", cn),) for cn in cns)}
    assert host_name_of(cert("host:h1")) == "h1"
    for peer in (cert("controller"), cert("amp-1234"), cert("host:"), cert("host:h1", "x"),
                 cert("host:bad name"), None, {}):
        assert host_name_of(peer) is None, peer


# the listener, over TLS on loopback ------------------------------------------------------------
def _write(folder: Path, name: str, pair: tuple[str, str]) -> tuple[str, str]:
    (folder / f"{name}.pem").write_text(pair[0])
    (folder / f"{name}.key").write_text(pair[1])
    return str(folder / f"{name}.pem"), str(folder / f"{name}.key")


class Pki:
    """A CA, its ``ca.pem`` in ``folder``, and TLS contexts for certificates it (or another
    CA) issued, each written to ``folder``."""

    def __init__(self, ca_dir: Path, folder: Path) -> None:
        self.ca = CertificateAuthority.load_or_create(ca_dir)
        self.folder = folder
        self.ca_file = str(folder / "ca.pem")
        Path(self.ca_file).write_text(self.ca.ca_pem)

    def client(self, name: str, pair: tuple[str, str]) -> ssl.SSLContext:
        return client_ssl_context(self.ca_file, *_write(self.folder, name, pair))

    def server(self, name: str, pair: tuple[str, str]) -> ssl.SSLContext:
        return server_ssl_context(self.ca_file, *_write(self.folder, name, pair))


@pytest.fixture
def pki(tmp_path: Path) -> Callable[[Path], Pki]:
    """Given the CA's directory (created if new), the CA with its files in ``tmp_path``."""
    return lambda ca_dir: Pki(ca_dir, tmp_path)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    the_engine = db.make_engine(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    db.upgrade(the_engine)  # migration 0018: port, registered_at
    yield the_engine
    the_engine.dispose()


def _rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.name: r for r in conn.execute(select(t.fleet_host))}


def test_the_listener_answers_only_host_agent_certificates(
        tmp_path: Path, engine: Engine, pki: Callable[[Path], Pki]) -> None:
    tls = pki(tmp_path / "pki")
    ca = tls.ca
    server = tls.server("reg", ca.issue_server("controller", "127.0.0.1"))
    host = tls.client("h7", ca.issue_host_agent("h7", "10.20.0.17"))
    amphora = tls.client("amp", ca.issue_server("3f2a", "10.20.200.5"))
    controller = tls.client("ctl", ca.issue_client("controller"))
    no_cert = ssl.create_default_context(cafile=tls.ca_file)
    other_ca = CertificateAuthority.load_or_create(tmp_path / "other")
    stranger = tls.client("str", other_ca.issue_host_agent("h7", "10.20.0.17"))

    async def run() -> dict[str, str]:
        listener = RegistrationListener(engine, server, ("127.0.0.1", 0))
        await listener.start()
        assert listener._server is not None
        port = listener._server.sockets[0].getsockname()[1]
        outcome: dict[str, str] = {}
        for label, ctx, body in (
                ("amphora", amphora, GOOD), ("controller", controller, GOOD),
                ("no certificate", no_cert, GOOD), ("another CA", stranger, GOOD),
                ("another name", host, {**GOOD, "name": "h8"}),
                ("too large", host, {**GOOD, "zone": "z" * 5000}),
                ("host-agent", host, GOOD)):
            try:
                outcome[label] = str(await register_once(f"127.0.0.1:{port}", body, ctx))
            except Exception as exc:
                outcome[label] = f"refused: {type(exc).__name__}: {exc}"
        await listener.stop()
        return outcome

    outcome = asyncio.run(run())
    assert outcome.pop("host-agent") == "{'registered': 'h7'}"
    assert all(v.startswith("refused") for v in outcome.values()), outcome
    assert "may register only 'h7'" in outcome["another name"]
    rows = _rows(engine)
    assert list(rows) == ["h7"]
    row = rows["h7"]
    assert (row.address, row.port, row.zone, row.capacity, row.state) == (
        "10.20.0.17", 9444, "az1", 20, "ENABLED")
    assert isinstance(row.registered_at, datetime)


# the fleet follows the registrations ---------------------------------------------------------
def test_the_fleet_polls_registered_hosts_and_forgets_removed_ones(engine: Engine) -> None:
    fleet = Fleet(engine, client=None, endpoints=("10.20.0.11:9444",),  # type: ignore[arg-type]
                  overlay=None)  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(t.fleet_host.insert().values(
            name="h7", address="10.20.0.17", port=9444, zone="az1", capacity=20,
            state="ENABLED", amphorae=0, registered_at=datetime(2026, 1, 1)))
    fleet._record()
    assert [h.endpoint for h in fleet.hosts] == ["10.20.0.11:9444", "10.20.0.17:9444"]
    view = fleet.hosts[1]
    # a host-agent answering at that address with another name is not taken for h7
    fleet.update(view, {"name": "h1", "zone": "az1", "capacity": 5, "address": "10.20.0.17"})
    assert view.name == "" and not fleet.live(view)
    fleet.update(view, {"name": "h7", "zone": "az1", "capacity": 20, "address": "10.20.0.17"})
    assert fleet.live(view) and fleet.by_name("h7") is view
    with engine.begin() as conn:  # it registered again from a new address
        conn.execute(update(t.fleet_host).where(t.fleet_host.c.name == "h7").values(
            address="10.20.0.27", registered_at=datetime(2026, 1, 2)))
    fleet._record()
    assert view.endpoint == "10.20.0.27:9444" and len(fleet.hosts) == 2
    assert _rows(engine)["h7"].address == "10.20.0.27"  # the poll did not write the old one
    with engine.begin() as conn:  # lbaas host remove
        conn.execute(delete(t.fleet_host).where(t.fleet_host.c.name == "h7"))
    fleet._record()
    assert [h.endpoint for h in fleet.hosts] == ["10.20.0.11:9444"]


def test_host_remove_refuses_a_host_with_amphorae(engine: Engine, tmp_path: Path) -> None:
    url = str(engine.url)
    with engine.begin() as conn:
        for name, amphorae in (("h1", 2), ("h2", 0)):
            conn.execute(t.fleet_host.insert().values(
                name=name, address="10.20.0.1", port=9444, zone="az1", capacity=20,
                state="ENABLED", amphorae=amphorae))

    def remove(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lbaas.main.cli", "host", "remove", name,
                               "--database-url", url, "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=60)
    held = remove("h1")
    assert held.returncode == 1 and "holds 2 amphorae" in held.stderr
    done = remove("h2")
    assert done.returncode == 0, done.stderr
    assert remove("h9").returncode == 1
    assert sorted(_rows(engine)) == ["h1"]


# in a lab ------------------------------------------------------------------------------------
def test_hosts_that_registered_take_amphorae(lab: FleetLab,
                                             pki: Callable[[Path], Pki]) -> None:
    settings = (lab.data / "lab.toml").read_text()
    assert "registration_listen" in settings and "hosts =" not in settings
    rows = {r[0]: r for r in lab.host_rows()}
    assert sorted(rows) == ["h1", "h2", "h3"]
    assert {n: rows[n][1] for n in rows} == {n: h["address"] for n, h in lab.hosts.items()}
    lb = lab.load_balancer("registered")
    (amp,) = lab.amphorae(lb["id"])
    assert lab.host_of(amp) in lab.hosts
    assert until(lambda: lab.api("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")
                 ["loadbalancer"]["operating_status"] == "ONLINE", 10)
    # the controller's listener refuses an amphora's certificate and a host's name on another
    # host's certificate
    tls = pki(lab.data / "pki")
    amphora = tls.client("amp", tls.ca.issue_server("amp", "10.213.200.20"))
    h3 = tls.client("h3", tls.ca.issue_host_agent("h3", "10.213.0.13"))
    hijack = {"name": "h1", "zone": "az2", "capacity": 1, "address": "10.213.0.13",
              "port": 9444}
    for ctx in (amphora, h3):
        with pytest.raises(Exception):  # noqa: B017 - TLS refusal or a 400: either is a "no"
            asyncio.run(register_once("10.213.0.1:9445", hijack, ctx))
    after = {r[0]: r for r in lab.host_rows()}
    assert after["h1"][1:3] == rows["h1"][1:3]
    # lbaas teardown (serve stopped) asks the host-agents to delete what they hold
    assert lab.serve is not None
    lab.serve.terminate()
    lab.serve.wait(20)
    out = lab.lbaas("teardown", "--config", str(lab.data / "lab.toml"))
    assert f"removed amphora {amp['compute_id']}" in out, out
    home = lab.data / "lab" / "hosts" / lab.host_of(amp) / "a" / "amphorae"
    assert not any(home.glob("amp-*"))


def test_configured_hosts_work_without_registration() -> None:
    import fcntl
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("haproxy") is None:
        pytest.skip("needs root and haproxy")
    fd = os.open("/tmp/lbaas-fleet-lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    lab = FleetLab()

    def static(text: str) -> str:
        hosts = ", ".join(f'"10.213.0.{11 + i}:9444"' for i in range(2))
        return "\n".join(f"hosts = [{hosts}]" if line.startswith("registration_listen")
                         else line for line in text.splitlines())
    try:
        lab.up(hosts=2, edit_settings=static)
        assert "registration_listen" not in (lab.data / "lab.toml").read_text()
        lb = lab.load_balancer("configured")
        (amp,) = lab.amphorae(lb["id"])
        assert lab.host_of(amp) in ("h1", "h2")
    finally:
        try:
            lab.down()
        finally:
            os.close(fd)
    assert not lab.leftovers(), lab.leftovers()
    lab.cleanup()
