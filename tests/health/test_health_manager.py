"""Heartbeats over real UDP change what the API shows, and nothing else does."""

from __future__ import annotations

import time
from typing import Any

import pytest
from heartbeat_helpers import KEY, until
from sqlalchemy.exc import OperationalError

from lbaas.api.policy import RequestContext
from lbaas.wire.heartbeat import wrap_amphora_envelope


def build(api: Any) -> dict[str, Any]:
    """LB + HTTP listener + pool with a health monitor + two members; ids and the amphora."""
    lb = api.create_lb(name="hb")
    ids: dict[str, Any] = {"lb": lb["id"]}
    code, body = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    ids["listener"] = body["listener"]["id"]
    api.wait_lb(lb["id"])
    code, body = api.post("/v2/lbaas/pools", {"pool": {
        "listener_id": ids["listener"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    ids["pool"] = body["pool"]["id"]
    api.wait_lb(lb["id"])
    code, body = api.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": ids["pool"], "type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    ids["members"] = []
    for address in ("192.0.2.50", "192.0.2.51"):
        code, body = api.post(f"/v2/lbaas/pools/{ids['pool']}/members", {"member": {
            "address": address, "protocol_port": 8080}})
        assert code == 201, body
        ids["members"].append(body["member"]["id"])
        api.wait_lb(lb["id"])
    code, body = api.get(f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")
    assert code == 200 and len(body["amphorae"]) == 1, body
    ids["amphora"] = body["amphorae"][0]["id"]
    return ids


def message(ids: dict[str, Any], seq: int, members: tuple[str, str] = ("UP", "UP"),
            stats: dict[str, int] | None = None, listener: str = "OPEN",
            pool: str = "UP") -> dict[str, Any]:
    return {"id": ids["amphora"], "seq": seq, "ver": 3, "ts": time.time(), "digest": None,
            "listeners": {ids["listener"]: {"status": listener, "stats": stats or {
                "rx": 0, "tx": 0, "conns": 0, "totconns": 0, "ereq": 0}}},
            "pools": {f"{ids['pool']}:{ids['listener']}": {
                "status": pool, "members": dict(zip(ids["members"], members, strict=True))}}}


def statuses(api: Any, ids: dict[str, Any]) -> dict[str, Any]:
    """Operating statuses from ``GET .../status`` (what ``openstack loadbalancer status show``
    prints)."""
    code, body = api.get(f"/v2/lbaas/loadbalancers/{ids['lb']}/status")
    assert code == 200, body
    lb = body["statuses"]["loadbalancer"]
    listener = lb["listeners"][0]
    pool = listener["pools"][0]
    members = {m["id"]: m["operating_status"] for m in pool["members"]}
    return {"lb": lb["operating_status"], "listener": listener["operating_status"],
            "pool": pool["operating_status"],
            "members": [members[m] for m in ids["members"]]}


def metric(api: Any, name: str) -> float:
    code, text = api.get("/metrics")
    assert code == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def test_member_down_degrades_pool_and_load_balancer_then_recovers(api: Any,
                                                                   health: Any) -> None:
    ids = build(api)
    hm = health()
    hm.send(message(ids, 1))
    assert statuses(api, ids) == {"lb": "ONLINE", "listener": "ONLINE", "pool": "ONLINE",
                                  "members": ["ONLINE", "ONLINE"]}
    hm.send(message(ids, 2, members=("UP", "DOWN")))
    assert statuses(api, ids) == {"lb": "DEGRADED", "listener": "ONLINE", "pool": "DEGRADED",
                                  "members": ["ONLINE", "ERROR"]}
    _, body = api.get(f"/v2/lbaas/pools/{ids['pool']}/members/{ids['members'][1]}")
    assert body["member"]["operating_status"] == "ERROR"
    hm.send(message(ids, 3, members=("DOWN", "DOWN"), pool="DOWN"))
    assert statuses(api, ids)["lb"] == "ERROR" and statuses(api, ids)["pool"] == "ERROR"
    hm.send(message(ids, 4, members=("DRAIN", "MAINT"), listener="FULL"))
    assert statuses(api, ids) == {"lb": "DEGRADED", "listener": "DEGRADED", "pool": "ONLINE",
                                  "members": ["DRAINING", "OFFLINE"]}
    hm.send(message(ids, 5))
    assert statuses(api, ids) == {"lb": "ONLINE", "listener": "ONLINE", "pool": "ONLINE",
                                  "members": ["ONLINE", "ONLINE"]}
    assert metric(api, "lbaas_health_heartbeats_accepted_total") == 5


def test_missing_listener_and_pool_are_reported(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health()
    hm.send({"id": ids["amphora"], "seq": 1, "ver": 3, "listeners": {}, "pools": {}})
    st = statuses(api, ids)
    # upstream: an enabled listener of an ACTIVE load balancer that is not reported is ERROR
    assert st["listener"] == "ERROR" and st["pool"] == "OFFLINE"
    assert st["lb"] == "ONLINE"


def test_forged_replayed_truncated_heartbeats_change_nothing_and_are_counted(
        api: Any, health: Any) -> None:
    ids = build(api)
    hm = health()
    old_down = hm.send(message(ids, 10, members=("DOWN", "UP")))
    hm.send(message(ids, 11))
    healthy = statuses(api, ids)
    assert healthy["members"] == ["ONLINE", "ONLINE"]
    down = message(ids, 12, members=("DOWN", "DOWN"), pool="DOWN")

    hm.send(down, key="not-the-key")  # forged
    hm.send_raw(old_down)  # replayed: an old datagram, byte for byte
    hm.send(message(ids, 11, members=("DOWN", "DOWN")))  # signed, but not newer
    hm.send_raw(wrap_amphora_envelope(down, "test-heartbeat-key")[:-20])  # truncated
    hm.send_raw(b"\x00" * 10)  # shorter than a signature
    hm.send({**down, "id": "4b2c1ad6-0000-4000-8000-000000000000"})  # unknown amphora
    hm.send_raw(wrap_amphora_envelope({"seq": 13}, KEY, ids["amphora"]))  # not a heartbeat

    assert statuses(api, ids) == healthy
    rejected = "lbaas_health_heartbeats_rejected_total"
    assert metric(api, f'{rejected}{{reason="bad_signature"}}') == 1
    assert metric(api, f'{rejected}{{reason="replay"}}') == 2
    assert metric(api, f'{rejected}{{reason="truncated"}}') == 2
    assert metric(api, f'{rejected}{{reason="unknown_amphora"}}') == 1
    assert metric(api, f'{rejected}{{reason="malformed"}}') == 1
    assert metric(api, "lbaas_health_heartbeats_accepted_total") == 2
    # the next genuine heartbeat still works
    hm.send(message(ids, 13, members=("UP", "DOWN")))
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]


class TokenAs:
    """Stands in for Keystone: every request carries this project and these roles."""

    def __init__(self, project: str, *roles: str) -> None:
        self.context = RequestContext(project_id=project, roles=frozenset(roles),
                                      is_admin="admin" in roles)

    async def authenticate(self, _req: Any) -> RequestContext:
        return self.context


def test_metrics_are_admin_only(api: Any, health: Any) -> None:
    health()
    api.service.app.authenticator = TokenAs("p1", "member")
    code, body = api.get("/metrics")
    assert code == 403, body
    api.service.app.authenticator = TokenAs("ops", "admin")
    code, text = api.get("/metrics")
    assert code == 200 and "lbaas_health_heartbeats_received_total 0" in text


def test_statistics_add_deltas_per_amphora(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health()
    hm.send(message(ids, 1, stats={"rx": 100, "tx": 1000, "conns": 3, "totconns": 5,
                                   "ereq": 1}))
    hm.send(message(ids, 2, stats={"rx": 50, "tx": 500, "conns": 2, "totconns": 4, "ereq": 0}))
    code, body = api.get(f"/v2/lbaas/listeners/{ids['listener']}/stats")
    assert code == 200
    assert body["stats"] == {"bytes_in": 150, "bytes_out": 1500, "active_connections": 2,
                             "total_connections": 9, "request_errors": 1}
    code, body = api.get(f"/v2/octavia/amphorae/{ids['amphora']}/stats")
    assert code == 200 and body["amphora_stats"][0]["bytes_in"] == 150
    # a forged heartbeat carrying huge counters adds nothing
    hm.send(message(ids, 3, stats={"rx": 10**9, "tx": 0, "conns": 0, "totconns": 0,
                                   "ereq": 0}), key="wrong")
    code, body = api.get(f"/v2/lbaas/listeners/{ids['listener']}/stats")
    assert body["stats"]["bytes_in"] == 150


def test_stale_amphora_is_failed_over_after_grace(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health(heartbeat_timeout=0.5, build_grace=1.5)
    hm.send(message(ids, 1))
    # still within the manager's own start-up grace and the heartbeat timeout: nothing
    assert hm.run(hm.manager.check_stale()) == []
    time.sleep(0.6)
    flagged = hm.run(hm.manager.check_stale())
    assert flagged == [ids["amphora"]]
    assert hm.notified == [ids["lb"]]
    assert metric(api, "lbaas_health_failovers_requested_total") == 1

    def replaced() -> bool:
        _, body = api.get(f"/v2/octavia/amphorae?loadbalancer_id={ids['lb']}")
        live = [a for a in body["amphorae"] if a["status"] != "DELETED"]
        return len(live) == 1 and live[0]["id"] != ids["amphora"]

    assert until(replaced), "the reconciler did not replace the stale amphora"
    api.wait_lb(ids["lb"])
    # the new amphora has never sent a heartbeat: it gets build_grace, not heartbeat_timeout
    assert hm.run(hm.manager.check_stale()) == []
    # the old amphora's heartbeats are no longer accepted
    hm.send(message(ids, 2))
    assert metric(api, 'lbaas_health_heartbeats_rejected_total{reason="unknown_amphora"}') == 1
    time.sleep(1.6)
    assert len(hm.run(hm.manager.check_stale())) == 1  # grace over, still silent


@pytest.mark.parametrize("outage", [
    OSError("database is down"),
    OperationalError("UPDATE amphora ...", {}, Exception("server closed the connection"))],
    ids=["oserror", "operational"])
def test_heartbeats_lost_to_a_database_error_postpone_staleness(api: Any, health: Any,
                                                               monkeypatch: Any,
                                                               outage: Exception) -> None:
    ids = build(api)
    hm = health(heartbeat_timeout=0.4, build_grace=0.4)
    hm.send(message(ids, 1))
    time.sleep(0.5)
    failed: list[int] = []

    def broken(*_args: Any) -> None:
        failed.append(1)
        raise outage

    monkeypatch.setattr(hm.manager.recorder, "record", broken)
    since = hm.manager.listening_since
    hm.sock.sendto(wrap_amphora_envelope(message(ids, 2), "test-heartbeat-key"), hm.manager.address)
    assert until(lambda: bool(failed) and hm.manager.listening_since != since)
    monkeypatch.undo()
    # the amphora's last recorded heartbeat is old, but its latest one was lost to us
    assert hm.run(hm.manager.check_stale()) == []
    time.sleep(0.5)
    assert hm.run(hm.manager.check_stale()) == [ids["amphora"]]


def test_failover_threshold_stops_mass_failover(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health(heartbeat_timeout=0.3, build_grace=0.3, failover_threshold=1)
    hm.send(message(ids, 1))
    time.sleep(0.4)
    assert hm.run(hm.manager.check_stale()) == []
    assert metric(api, "lbaas_health_failovers_requested_total") == 0
