"""Admin amphora endpoints: list/show, delete, failover, config and statistics."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from sqlalchemy import update

from lbaas.api.policy import RequestContext
from lbaas.store import tables as t

AMPS = "/v2/octavia/amphorae"
LBS = "/v2/lbaas/loadbalancers"
FIELDS = {"id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip",
          "vrrp_port_id", "ha_port_id", "cert_expiration", "cert_busy", "role", "status",
          "vrrp_interface", "vrrp_id", "vrrp_priority", "cached_zone", "created_at",
          "updated_at", "image_id", "compute_flavor"}


def amps_of(api, lb_id):
    code, body = api.get(f"{AMPS}?loadbalancer_id={lb_id}")
    assert code == 200
    return body["amphorae"]


def set_amp(api, amp_id, **values):
    with api.service.engine.begin() as conn:
        conn.execute(update(t.amphora).where(t.amphora.c.id == amp_id).values(**values))


def set_lb_status(api, lb_id, status):
    with api.service.engine.begin() as conn:
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(provisioning_status=status))


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def active_standby_lb(api, **fields):
    data = json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"})
    _, prof = api.post("/v2/lbaas/flavorprofiles", {"flavorprofile": {
        "name": "ha", "provider_name": "amphora", "flavor_data": data}})
    _, flavor = api.post("/v2/lbaas/flavors", {"flavor": {
        "name": "ha", "flavor_profile_id": prof["flavorprofile"]["id"]}})
    return api.create_lb(flavor_id=flavor["flavor"]["id"], **fields)


def test_list_and_show(api):
    lb = api.create_lb()
    code, body = api.get(AMPS)
    assert code == 200 and body["amphorae_links"] == []
    [amp] = body["amphorae"]
    assert set(amp) == FIELDS
    assert amp["loadbalancer_id"] == lb["id"]
    assert amp["status"] == "ALLOCATED" and amp["role"] == "STANDALONE"
    assert amp["ha_ip"] == lb["vip_address"] and amp["cert_busy"] is False
    datetime.fromisoformat(amp["created_at"])
    code, body = api.get(f"/v2.0/octavia/amphorae/{amp['id']}")
    assert code == 200 and body == {"amphora": amp}
    code, body = api.get(f"{AMPS}/{amp['id']}?fields=id&fields=status")
    assert body == {"amphora": {"id": amp["id"], "status": "ALLOCATED"}}


def test_show_unknown_is_404(api):
    missing = str(uuid.uuid4())
    for method, path in (("get", f"{AMPS}/{missing}"), ("delete", f"{AMPS}/{missing}"),
                         ("put", f"{AMPS}/{missing}/failover"),
                         ("put", f"{AMPS}/{missing}/config")):
        code, body = getattr(api, method)(path)
        assert code == 404, path
        assert body["faultstring"] == f"Amphora {missing} not found."


def test_active_standby_pair(api):
    lb = active_standby_lb(api)
    amps = sorted(amps_of(api, lb["id"]), key=lambda a: a["role"])
    assert [(a["role"], a["vrrp_priority"]) for a in amps] == [("BACKUP", 90), ("MASTER", 100)]
    _, body = api.get(f"{AMPS}?role=MASTER")
    assert [a["id"] for a in body["amphorae"]] == [amps[1]["id"]]


def test_filters_sorting_and_pagination(api):
    lb1 = api.create_lb(project_id="proj-a")
    lb2 = api.create_lb(project_id="proj-b")
    code, body = api.get(f"{AMPS}?project_id=proj-b")
    assert [a["loadbalancer_id"] for a in body["amphorae"]] == [lb2["id"]]
    code, body = api.get(f"{AMPS}?project_id=nobody")
    assert body["amphorae"] == []
    code, body = api.get(f"{AMPS}?status=ALLOCATED&loadbalancer_id={lb1['id']}")
    assert [a["loadbalancer_id"] for a in body["amphorae"]] == [lb1["id"]]
    code, body = api.get(f"{AMPS}?limit=1")
    assert len(body["amphorae"]) == 1 and body["amphorae_links"][0]["rel"] == "next"
    first = body["amphorae"][0]["id"]
    code, body = api.get(f"{AMPS}?limit=1&marker={first}")
    assert len(body["amphorae"]) == 1 and body["amphorae"][0]["id"] != first
    code, body = api.get(f"{AMPS}?sort=created_at:desc&fields=loadbalancer_id")
    assert body["amphorae"] == [{"loadbalancer_id": lb2["id"]},
                                {"loadbalancer_id": lb1["id"]}]
    code, body = api.get(f"{AMPS}?bogus=1")
    assert code == 400
    code, body = api.get(f"{AMPS}?created_at=2020-01-01T00:00:00&cert_expiration=2020-01-01")
    assert code == 200 and body["amphorae"] == []
    for bad in ("created_at=yesterday", "vrrp_id=one"):
        code, body = api.get(f"{AMPS}?{bad}")
        assert code == 400
        assert body["faultstring"] == "One or more arguments are either duplicate or invalid"
    code, body = api.get(f"{AMPS}?sort=bogus")
    assert code == 400


def test_delete_only_in_error(api):
    lb = api.create_lb()
    [amp] = amps_of(api, lb["id"])
    code, body = api.delete(f"{AMPS}/{amp['id']}")
    assert code == 409
    assert body["faultstring"] == f"amphora {amp['id']} is immutable and cannot be updated."
    set_amp(api, amp["id"], status="ERROR")
    code, body = api.delete(f"{AMPS}/{amp['id']}")
    assert code == 204 and body is None
    code, body = api.get(f"{AMPS}/{amp['id']}")
    assert code == 404
    assert amp["id"] not in [a["id"] for a in api.get(AMPS)[1]["amphorae"]]
    assert api.delete(f"{AMPS}/{amp['id']}")[0] == 404
    # the load balancer is reconciled and gets a working amphora again
    wait_for(lambda: [a["status"] for a in amps_of(api, lb["id"])] == ["ALLOCATED"])


def test_failover_replaces_the_amphora(api):
    lb = api.create_lb()
    [old] = amps_of(api, lb["id"])
    code, body = api.put(f"{AMPS}/{old['id']}/failover")
    assert code == 202 and body is None
    wait_for(lambda: api.get(f"{AMPS}/{old['id']}")[0] == 404)
    api.wait_lb(lb["id"])
    [new] = amps_of(api, lb["id"])
    assert new["id"] != old["id"] and new["compute_id"] != old["compute_id"]
    assert new["role"] == "STANDALONE" and new["status"] == "ALLOCATED"
    assert old["compute_id"] not in api.service.drivers.compute.instances


def test_failover_of_one_amphora_of_a_pair(api):
    lb = active_standby_lb(api)
    by_role = {a["role"]: a for a in amps_of(api, lb["id"])}
    assert api.put(f"{AMPS}/{by_role['BACKUP']['id']}/failover")[0] == 202
    wait_for(lambda: api.get(f"{AMPS}/{by_role['BACKUP']['id']}")[0] == 404)
    api.wait_lb(lb["id"])
    after = {a["role"]: a["id"] for a in amps_of(api, lb["id"])}
    assert after["MASTER"] == by_role["MASTER"]["id"]
    assert after["BACKUP"] != by_role["BACKUP"]["id"]


def test_failover_needs_an_active_load_balancer(api):
    lb = api.create_lb()
    [amp] = amps_of(api, lb["id"])
    set_lb_status(api, lb["id"], "ERROR")
    code, body = api.put(f"{AMPS}/{amp['id']}/failover")
    assert code == 409
    assert body["faultstring"] == (f"Load Balancer {lb['id']} is immutable and cannot be "
                                   "updated.")
    assert api.get(f"{AMPS}/{amp['id']}")[1]["amphora"]["status"] == "ALLOCATED"


def test_config_pushes_the_configuration_again(api):
    lb = api.create_lb()
    [amp] = amps_of(api, lb["id"])
    fake = api.service.drivers.amphora
    assert amp["compute_id"] in fake.bundles
    pushed = fake.bundles.pop(amp["compute_id"])
    fake.active.pop(amp["compute_id"])
    code, body = api.put(f"{AMPS}/{amp['id']}/config")
    assert code == 202 and body is None
    wait_for(lambda: amp["compute_id"] in fake.bundles)
    assert fake.bundles[amp["compute_id"]] == pushed
    assert api.get(f"{LBS}/{lb['id']}")[1]["loadbalancer"]["provisioning_status"] == "ACTIVE"


def _add_listener_with_stats(api, lb, amp_id, port, **counters):
    listener_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.listener.insert().values(
            id=listener_id, project_id=lb["project_id"], load_balancer_id=lb["id"],
            provisioning_status="ACTIVE", operating_status="ONLINE", admin_state_up=True,
            protocol="TCP", protocol_port=port, created_at=datetime.now()))
        conn.execute(t.listener_statistics.insert().values(
            listener_id=listener_id, amphora_id=amp_id, **counters))
    return listener_id


def test_stats_one_entry_per_listener(api):
    lb = api.create_lb()
    [amp] = amps_of(api, lb["id"])
    code, body = api.get(f"{AMPS}/{amp['id']}/stats")
    assert code == 404
    assert body["faultstring"] == f"Amphora stats for {amp['id']} not found."
    first = _add_listener_with_stats(api, lb, amp["id"], 80, bytes_in=10, bytes_out=20,
                                     active_connections=1, total_connections=5,
                                     request_errors=2)
    second = _add_listener_with_stats(api, lb, amp["id"], 81, bytes_in=1, bytes_out=2,
                                      active_connections=0, total_connections=3,
                                      request_errors=0)
    _add_listener_with_stats(api, lb, str(uuid.uuid4()), 82, bytes_in=99, bytes_out=99,
                             active_connections=9, total_connections=9, request_errors=9)
    code, body = api.get(f"{AMPS}/{amp['id']}/stats")
    assert code == 200
    assert body == {"amphora_stats": [
        {"id": amp["id"], "listener_id": first, "loadbalancer_id": lb["id"],
         "active_connections": 1, "bytes_in": 10, "bytes_out": 20, "request_errors": 2,
         "total_connections": 5},
        {"id": amp["id"], "listener_id": second, "loadbalancer_id": lb["id"],
         "active_connections": 0, "bytes_in": 1, "bytes_out": 2, "request_errors": 0,
         "total_connections": 3},
    ]}


class TokenAs:
    """Stands in for Keystone: every request carries this project and these roles."""

    def __init__(self, project, *roles):
        self.context = RequestContext(project_id=project, roles=frozenset(roles),
                                      is_admin="admin" in roles)

    async def authenticate(self, _req):
        return self.context


def test_rbac_amphorae_are_admin_only(api):
    lb = api.create_lb(project_id="p1")
    [amp] = amps_of(api, lb["id"])
    api.service.app.authenticator = TokenAs("p1", "member")
    for method, path in (("GET", AMPS), ("GET", f"{AMPS}/{amp['id']}"),
                         ("DELETE", f"{AMPS}/{amp['id']}"),
                         ("PUT", f"{AMPS}/{amp['id']}/failover"),
                         ("PUT", f"{AMPS}/{amp['id']}/config"),
                         ("GET", f"{AMPS}/{amp['id']}/stats")):
        code, body = api.call(method, path)
        assert code == 403, (method, path)
        assert body["faultstring"] == "Policy does not allow this request to be performed."
    assert api.get(f"{LBS}/{lb['id']}")[1]["loadbalancer"]["provisioning_status"] == "ACTIVE"
    api.service.app.authenticator = TokenAs("ops", "admin")
    assert [a["id"] for a in api.get(AMPS)[1]["amphorae"]] == [amp["id"]]


def test_config_and_delete_survive_a_lost_notification(api):
    lb = api.create_lb()
    [amp] = amps_of(api, lb["id"])
    fake = api.service.drivers.amphora
    pushed = fake.bundles.pop(amp["compute_id"])
    api.service.app.state.notify = lambda _lb_id: None  # the message is lost
    assert api.put(f"{AMPS}/{amp['id']}/config")[0] == 202
    wait_for(lambda: fake.bundles.get(amp["compute_id"]) == pushed)  # periodic resync
    set_amp(api, amp["id"], status="ERROR")
    assert api.delete(f"{AMPS}/{amp['id']}")[0] == 204
    wait_for(lambda: [a["status"] for a in amps_of(api, lb["id"])] == ["ALLOCATED"])
    assert api.get(f"{LBS}/{lb['id']}")[1]["loadbalancer"]["provisioning_status"] == "ACTIVE"
