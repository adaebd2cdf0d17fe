"""Amphorae on a 3-host lab fleet: placement, traffic across the overlay, anti-affinity,
lost hosts, drains (root, haproxy, keepalived; ``make test-fleet``)."""

from __future__ import annotations

from fleet_lab import FleetLab, get, until

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
