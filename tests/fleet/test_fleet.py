"""Amphorae on a 3-host lab fleet: placement, traffic across the overlay, anti-affinity,
lost hosts, drains (root, haproxy, keepalived; ``make test-fleet``)."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet_lab import FleetLab, Probe, get, sh, until

from lbaas.certs.ca import CertificateAuthority

BACKENDS = {"h1": "10.213.10.201", "h2": "10.213.10.202", "h3": "10.213.10.203"}


def test_amphora_lands_on_a_lab_host_and_serves(lab: FleetLab) -> None:
    rows = {r[0]: r for r in lab.host_rows()}
    assert sorted(rows) == ["h1", "h2", "h3"]
    assert all(r[3] == "ENABLED" for r in rows.values())
    lb = lab.load_balancer("one")
    (amp,) = lab.amphorae(lb["id"])
    host = lab.host_of(amp)
    assert host in lab.hosts
    namespace = amp["compute_id"].split("/", 1)[1]
    assert (lab.data / "lab" / "hosts" / host / "a" / "amphorae" / namespace).is_dir()
    assert amp["cached_zone"] == lab.hosts[host]["zone"]
    # the heartbeats crossed the overlay: the health manager marked it ONLINE
    assert until(lambda: lab.api("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")
                 ["loadbalancer"]["operating_status"] == "ONLINE", 10)


def test_members_on_two_hosts_through_a_vip_on_a_third(lab: FleetLab) -> None:
    for host in ("h2", "h3"):
        lab.backend(host, BACKENDS[host])
    lb = lab.load_balancer("spread", members=(BACKENDS["h2"], BACKENDS["h3"]))
    (amp,) = lab.amphorae(lb["id"])
    assert lab.host_of(amp) == "h1"  # all empty: least loaded, then by name
    expected = {f"backend {BACKENDS[h]}" for h in ("h2", "h3")}
    # from the client namespace on the external segment
    seen = {lab.client("python3", "-c", _CLIENT.format(vip=lb["vip_address"])).strip()
            for _ in range(8)}
    assert seen == expected, seen
    # and from the controller's own namespace
    assert {get(lb["vip_address"]) for _ in range(8)} == expected


_CLIENT = ("import socket; s = socket.create_connection(('{vip}', 80), timeout=2); "
           "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'); "
           "d = b''.join(iter(lambda: s.recv(4096), b'')); "
           "print(d.partition(b'\\r\\n\\r\\n')[2].split(b'\\n')[0].decode())")


def test_zone_and_anti_affinity(lab: FleetLab) -> None:
    az = lab.zone("zone-2", "az2")
    lb = lab.load_balancer("zoned", zone=az)
    (amp,) = lab.amphorae(lb["id"])
    assert lab.host_of(amp) == "h2" and amp["cached_zone"] == "az2"
    flavor = lab.flavor("ACTIVE_STANDBY")
    pair = lab.load_balancer("pair", flavor=flavor)
    amps = lab.amphorae(pair["id"])
    assert sorted(a["role"] for a in amps) == ["BACKUP", "MASTER"]
    hosts = {lab.host_of(a) for a in amps}
    assert len(hosts) == 2, amps


def _serving(lab: FleetLab, name: str, flavor: str | None = None) -> tuple[dict, Probe]:
    """A load balancer built on an empty fleet (its amphora on h1, an ACTIVE_STANDBY pair on
    h1 + h2: least loaded, then by name) with members on h2 and h3, and a probe through it."""
    lb = lab.load_balancer(name, flavor=flavor)
    assert "h1" in {lab.host_of(a) for a in lab.amphorae(lb["id"])}
    for host in ("h2", "h3"):
        lab.backend(host, BACKENDS[host])
    lb = lab.add_members(lb, (BACKENDS["h2"], BACKENDS["h3"]))
    probe = Probe(lb["vip_address"])
    probe.start()
    assert until(lambda: probe.answered() >= 10, 10), probe.results[-5:]
    return lb, probe


def test_single_host_lost_serves_again_within_5_s(lab: FleetLab) -> None:
    lb, probe = _serving(lab, "single")
    (amp,) = lab.amphorae(lb["id"])
    lost = lab.host_of(amp)
    # from before the command (its start-up comes first): the outage itself is measured from
    # the last answer before the first failed probe, so the VIP still serving meanwhile is
    # never charged to it
    killed = time.monotonic()
    lab.kill_host(lost)
    if not until(lambda: _recovered(probe, killed), 20):
        pytest.fail(f"{_timeline(probe, killed)}\n{lab.log()}")
    time.sleep(1)
    probe.stop.set()
    probe.join()
    outage = probe.outage_after(killed)
    if not 0 < outage <= 5.0:
        pytest.fail(f"outage {outage}: {_timeline(probe, killed)}\n{lab.log()}")
    lab.wait_active(lb["id"])
    (new,) = lab.amphorae(lb["id"])
    assert lab.host_of(new) != lost


def test_active_standby_master_host_lost(lab: FleetLab) -> None:
    flavor = lab.flavor("ACTIVE_STANDBY")
    lb, probe = _serving(lab, "pair", flavor)
    amps = {a["role"]: a for a in lab.amphorae(lb["id"])}
    master_host, backup_host = lab.host_of(amps["MASTER"]), lab.host_of(amps["BACKUP"])
    assert master_host != backup_host
    third = ({"h1", "h2", "h3"} - {master_host, backup_host}).pop()
    killed = time.monotonic()  # before the command: see the SINGLE test
    lab.kill_host(master_host)

    def rebuilt() -> bool:
        now = {a["role"]: a for a in lab.amphorae(lb["id"])}
        return set(now) == {"MASTER", "BACKUP"} and now["MASTER"]["id"] == \
            amps["BACKUP"]["id"] and now["BACKUP"]["status"] == "ALLOCATED" and \
            lab.lb_status(lb["id"]) == "ACTIVE"
    assert until(rebuilt, 30), (lab.amphorae(lb["id"]), lab.log())
    now = {a["role"]: a for a in lab.amphorae(lb["id"])}
    assert lab.host_of(now["MASTER"]) == backup_host
    assert lab.host_of(now["BACKUP"]) == third
    time.sleep(1)
    probe.stop.set()
    probe.join()
    assert probe.outage_after(killed) <= 1.0, probe.outage_after(killed)


def test_drain_moves_every_amphora_off_a_host(lab: FleetLab) -> None:
    """A pair (MASTER h1, BACKUP h2) and a SINGLE (h3), both serving; draining h1 (then
    enabling it again) and then h3 moves each amphora off make-before-break: the MASTER
    hands the VIP over before it goes, the SINGLE's replacement serves first."""
    flavor = lab.flavor("ACTIVE_STANDBY")
    pair, pair_probe = _serving(lab, "pair", flavor)
    single = lab.add_members(lab.load_balancer("single"), (BACKENDS["h2"], BACKENDS["h3"]))
    (single_amp,) = lab.amphorae(single["id"])
    assert lab.host_of(single_amp) == "h3"
    single_probe = Probe(single["vip_address"])
    single_probe.start()
    # connections that stay open 30 ms before their request: one likely spans the VIP's move
    held_probe = Probe(pair["vip_address"], hold=0.03)
    held_probe.start()
    assert until(lambda: single_probe.answered() >= 10 and held_probe.answered() >= 10, 10)
    config = str(lab.data / "lab.toml")
    started = time.monotonic()
    for drained in ("h1", "h3"):
        lab.lbaas("host", "drain", drained, "--config", config)

        def empty(drained: str = drained) -> bool:
            amps = lab.amphorae(pair["id"]) + lab.amphorae(single["id"])
            return all(lab.host_of(a) != drained and a["status"] == "ALLOCATED" for a in amps) \
                and len(amps) == 3 and lab.lb_status(pair["id"]) == "ACTIVE" \
                and lab.lb_status(single["id"]) == "ACTIVE"
        if not until(empty, 60):
            pytest.fail(f"{drained}: {lab.amphorae(pair['id'])} {lab.amphorae(single['id'])}"
                        f"\n{lab.log()}")
        assert until(lambda d=drained: {r[0]: r for r in lab.host_rows()}[d][4] == "0", 10)
        assert {r[0]: r for r in lab.host_rows()}[drained][3] == "DRAINING"
        lab.lbaas("host", "enable", drained, "--config", config)  # room for the next drain
        assert {r[0]: r for r in lab.host_rows()}[drained][3] == "ENABLED"
    time.sleep(0.5)
    for probe in (pair_probe, single_probe, held_probe):
        probe.stop.set()
        probe.join()
    assert len({lab.host_of(a) for a in lab.amphorae(pair["id"])}) == 2
    # make-before-break (decision 0114): the drained MASTER's BACKUP takes the VIP while the
    # old MASTER still serves what reaches its MAC, and forwards to it the connections it did
    # not see start (the held probe's span the switch): no failed request. The SINGLE's
    # replacement serves before the old one goes, but resets a segment of a connection the
    # old one accepted if the client's MAC switch falls inside it (about 1 run in 7): one
    for probe, allowed in ((pair_probe, 0), (held_probe, 0), (single_probe, 1)):
        failed = [t for t, r in probe.results if r is None and t >= started]
        assert len(failed) <= allowed, (f"{probe.vip} (hold {probe.hold} s): "
                            f"{[probe.errors.get(t) for t in failed]}\n"
                            f"{_timeline(probe, started)}\n{_moves(lab)}")


def _moves(lab: FleetLab) -> str:
    """The serve log's lines about amphorae being moved."""
    try:
        text = (lab.root / "serve.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()
                     if any(w in line for w in ("draining", "handed", "built", "retired")))


def _timeline(probe: Probe, since: float) -> str:
    return " ".join(f"{t - since:.2f}:{'ok' if r else 'x'}" for t, r in probe.results
                    if t >= since - 0.2)


def _recovered(probe: Probe, since: float) -> bool:
    """A probe failed after ``since`` and the last five answered."""
    failed = [t for t, r in probe.results if t >= since and r is None]
    return bool(failed) and len(probe.results) > 5 and \
        all(r is not None for _, r in probe.results[-5:])


def test_a_failover_that_found_no_host_is_retried_when_one_can(lab: FleetLab) -> None:
    lb, probe = _serving(lab, "single")  # amphora on h1, members on h2 and h3
    config = str(lab.data / "lab.toml")
    for host in ("h2", "h3"):
        lab.lbaas("host", "drain", host, "--config", config)
    lab.kill_host("h1")
    assert until(lambda: lab.lb_status(lb["id"]) == "ERROR", 20), lab.log()
    assert not [a for a in lab.amphorae(lb["id"]) if a["status"] == "ALLOCATED"]
    lab.lbaas("host", "enable", "h3", "--config", config)
    assert until(lambda: lab.lb_status(lb["id"]) == "ACTIVE"
                 and all(r is not None for _, r in probe.results[-5:]), 40), lab.log()
    (amp,) = [a for a in lab.amphorae(lb["id"]) if a["status"] == "ALLOCATED"]
    assert lab.host_of(amp) == "h3"
    probe.stop.set()
    probe.join()


def test_host_agent_answers_only_the_controller_certificate(lab: FleetLab,
                                                            tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(lab.data / "pki")
    address = f"{lab.hosts['h1']['address']}:9444"

    def ask(cert: tuple[str, str] | None) -> Any:
        ctx = ssl.create_default_context(cafile=str(lab.data / "pki" / "ca.pem"))
        if cert is not None:
            (tmp_path / "c.pem").write_text(cert[0])
            (tmp_path / "c.key").write_text(cert[1])
            ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "c.key")
        with httpx.Client(verify=ctx, timeout=5) as client:
            return client.get(f"https://{address}/v1/host")

    answer = ask(ca.issue_client("controller"))
    assert answer.status_code == 200 and answer.json()["name"] == "h1"
    # an amphora's server certificate from the same CA, another client name, no certificate
    for cert in (ca.issue_server("0a1b2c3d-amphora", "10.213.200.10"),
                 ca.issue_client("someone"), None):
        with pytest.raises((httpx.HTTPError, ssl.SSLError)):
            ask(cert)


def test_lab_down_after_a_host_was_killed_leaves_nothing(lab: FleetLab) -> None:
    lab.backend("h2", BACKENDS["h2"])
    lb = lab.load_balancer("left", members=(BACKENDS["h2"],))
    (amp,) = lab.amphorae(lb["id"])
    lab.kill_host(lab.host_of(amp))
    lab.down()
    assert lab.leftovers() == []
    for ns in (amp["compute_id"].split("/")[1], f"lbh{lab.tag}-h1", f"lbh{lab.tag}-client"):
        assert ns not in sh("ip", "netns", "list")
