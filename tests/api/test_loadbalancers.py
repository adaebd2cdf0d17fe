"""Load balancer endpoints as clients see them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from lbaas.store import tables as t

LBS = "/v2/lbaas/loadbalancers"


def test_create_reaches_active_with_vip_from_pool(api):
    code, body = api.post(LBS, {"loadbalancer": {
        "name": "lb1", "vip_subnet_id": api.subnet_id("public-subnet")}})
    assert code == 201, body
    lb = body["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert lb["operating_status"] == "OFFLINE"
    assert lb["tenant_id"] == lb["project_id"]
    assert lb["vip_address"].startswith("172.24.4.")
    assert lb["vip_network_id"] == api.network_id("public")
    assert lb["listeners"] == [] and lb["pools"] == []
    active = api.wait_lb(lb["id"])
    assert active["operating_status"] == "OFFLINE"
    assert active["provider"] == "amphora"


def test_both_prefixes_and_json_suffix(api):
    lb = api.create_lb(name="x")
    for path in (f"/v2.0/lbaas/loadbalancers/{lb['id']}", f"{LBS}/{lb['id']}.json",
                 f"/v2/loadbalancers/{lb['id']}"):
        code, body = api.get(path)
        assert code == 200 and body["loadbalancer"]["id"] == lb["id"]


def test_missing_vip_is_400_with_octavia_message(api):
    code, body = api.post(LBS, {"loadbalancer": {"name": "novip"}})
    assert code == 400
    assert body == {"faultcode": "Client", "debuginfo": None, "faultstring":
                    "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, "
                    "vip_subnet_id."}


def test_bad_uuid_unknown_field_bad_json(api):
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": "nope"}})
    assert code == 400 and "Value should be UUID format" in body["faultstring"]
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id(
        "public-subnet"), "bogus": 1}})
    assert code == 400 and "Unknown attribute" in body["faultstring"]
    resp = api.client.post(LBS, content=b"{not json", headers={"content-type":
                                                               "application/json"})
    assert resp.status_code == 400 and resp.json()["faultcode"] == "Client"


def test_vip_address_outside_pool_or_taken(api):
    sub = api.subnet_id("public-subnet")
    code, _ = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub,
                                              "vip_address": "172.24.4.251"}})
    assert code == 400
    code, _ = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub,
                                              "vip_address": "172.24.4.77"}})
    assert code == 201
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub,
                                                 "vip_address": "172.24.4.77"}})
    assert code == 409 and "already in use" in body["faultstring"]


def test_update_returns_200_then_immutable_fields_are_400(api):
    lb = api.create_lb(name="a")
    code, body = api.put(f"{LBS}/{lb['id']}", {"loadbalancer": {"name": "b"}})
    assert code == 200
    assert body["loadbalancer"]["name"] == "b"
    assert body["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.put(f"{LBS}/{lb['id']}", {"loadbalancer": {"vip_address": "1.2.3.4"}})
    assert code == 400 and body["faultcode"] == "Client"
    assert "vip_address" in body["faultstring"]


def test_delete_and_404(api):
    lb = api.create_lb()
    code, _ = api.delete(f"{LBS}/{lb['id']}")
    assert code == 204
    api.wait_lb(lb["id"], "DELETED")
    code, body = api.get(f"{LBS}/{lb['id']}")
    assert code == 404
    assert body["faultstring"] == f"Load Balancer {lb['id']} not found."
    code, _ = api.get(f"{LBS}/{uuid.uuid4()}")
    assert code == 404


def test_status_tree_and_stats(api):
    lb = api.create_lb(name="tree")
    code, body = api.get(f"{LBS}/{lb['id']}/status")
    assert code == 200
    assert body["statuses"]["loadbalancer"]["name"] == "tree"
    assert body["statuses"]["loadbalancer"]["listeners"] == []
    code, body = api.get(f"{LBS}/{lb['id']}/stats")
    assert code == 200 and body["stats"] == {"bytes_in": 0, "bytes_out": 0,
                                             "active_connections": 0, "total_connections": 0,
                                             "request_errors": 0}


def test_list_pagination_sorting_fields_tags(api):
    ids = [api.create_lb(name=f"lb{i}", tags=["even" if i % 2 == 0 else "odd", "all"])["id"]
           for i in range(5)]
    code, body = api.get(f"{LBS}?limit=2")
    assert code == 200
    assert [x["id"] for x in body["loadbalancers"]] == ids[:2]
    assert [link["rel"] for link in body["loadbalancers_links"]] == ["next"]
    code, body = api.get(f"{LBS}?limit=2&marker={ids[1]}")
    assert [x["id"] for x in body["loadbalancers"]] == ids[2:4]
    assert {link["rel"] for link in body["loadbalancers_links"]} == {"next", "previous"}
    code, body = api.get(f"{LBS}?sort=name:desc&fields=name")
    assert [x for x in body["loadbalancers"]] == [{"name": f"lb{i}"} for i in range(4, -1, -1)]
    code, body = api.get(f"{LBS}?tags=even")
    assert len(body["loadbalancers"]) == 3
    code, body = api.get(f"{LBS}?not-tags-any=even")
    assert len(body["loadbalancers"]) == 2
    code, body = api.get(f"{LBS}?name=lb3")
    assert [x["id"] for x in body["loadbalancers"]] == [ids[3]]
    code, body = api.get(f"{LBS}?bogus=1")
    assert code == 400
    assert body["faultstring"] == "One or more arguments are either duplicate or invalid"
    code, body = api.get(f"{LBS}?sort=bogus")
    assert code == 400 and body["faultstring"] == "Supplied sort key 'bogus' is not valid."
    code, body = api.get(f"{LBS}?marker={uuid.uuid4()}")
    assert code == 400


def test_version_document_and_406(api):
    code, body = api.get("/")
    assert code == 200
    assert body["versions"][-1]["id"] == "v2.30"
    assert body["versions"][-1]["status"] == "CURRENT"
    code, body = api.get(LBS, headers={"Accept": "text/plain"})
    assert code == 406


def test_failover_returns_202_and_replaces_amphora(api):
    lb = api.create_lb()
    before = set(api.service.drivers.compute.instances)
    code, _ = api.put(f"{LBS}/{lb['id']}/failover")
    assert code == 202
    api.wait_lb(lb["id"])
    after = set(api.service.drivers.compute.instances)
    assert len(after) == 1 and after != before


def set_lb_status(api: Any, lb_id: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(provisioning_status=status))


@contextlib.contextmanager
def paused(api: Any) -> Iterator[None]:
    """Hold back the reconciler (handlers' notify and the resync loop) so a PENDING_* status a
    handler set stays observable."""
    state, queue = api.service.app.state, api.service.queue
    original = state.notify
    held: list[str] = []
    state.notify = queue.notify = held.append
    api.client.portal.call(queue.wait_idle)  # let a reconcile already under way finish
    try:
        yield
    finally:
        del queue.notify
        state.notify = original
        for lb_id in set(held):
            original(lb_id)


def invalid_state(status: str, lb_id: str) -> dict[str, Any]:
    return {"faultcode": "Client", "debuginfo": None,
            "faultstring": f"Invalid state {status} of loadbalancer resource {lb_id}"}


def test_update_delete_failover_are_409_while_pending(api):
    lb = api.create_lb(name="a")
    path = f"{LBS}/{lb['id']}"
    with paused(api):
        code, body = api.put(path, {"loadbalancer": {"name": "b"}})
        assert code == 200 and body["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
        code, body = api.put(path, {"loadbalancer": {"name": "c"}})
        assert (code, body) == (409, invalid_state("PENDING_UPDATE", lb["id"]))
        code, body = api.delete(path)
        assert (code, body) == (409, invalid_state("PENDING_UPDATE", lb["id"]))
        code, body = api.put(f"{path}/failover")
        assert (code, body) == (409, invalid_state("PENDING_UPDATE", lb["id"]))
        # A refused request changed nothing.
        code, body = api.get(path)
        assert body["loadbalancer"]["name"] == "b"
    assert api.wait_lb(lb["id"])["name"] == "b"


@pytest.mark.parametrize("status", ["PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE"])
def test_pending_states_refuse_changes(service_factory, status):
    # No periodic resync, so a status written here stays until the test changes it.
    api = service_factory(controller={"resync_interval": 3600})
    lb = api.create_lb()
    path = f"{LBS}/{lb['id']}"
    set_lb_status(api, lb["id"], status)
    assert api.put(path, {"loadbalancer": {"name": "x"}}) == (409, invalid_state(status, lb["id"]))
    assert api.delete(path) == (409, invalid_state(status, lb["id"]))
    assert api.put(f"{path}/failover") == (409, invalid_state(status, lb["id"]))
    # Body validation (400) still comes first, as upstream.
    code, body = api.put(path, {"loadbalancer": {"provider": "noop"}})
    assert code == 400 and "provider" in body["faultstring"]
    assert api.get(path)[1]["loadbalancer"]["provisioning_status"] == status


def test_error_state_allows_delete_and_failover_but_not_update(service_factory):
    api = service_factory(controller={"resync_interval": 3600})
    lb = api.create_lb()
    path = f"{LBS}/{lb['id']}"
    set_lb_status(api, lb["id"], "ERROR")
    assert api.put(path, {"loadbalancer": {"name": "x"}}) == (409, invalid_state("ERROR", lb["id"]))
    code, _ = api.put(f"{path}/failover")
    assert code == 202
    api.wait_lb(lb["id"])
    set_lb_status(api, lb["id"], "ERROR")
    code, _ = api.delete(path)
    assert code == 204
    api.wait_lb(lb["id"], "DELETED")


def test_deleted_load_balancer_is_404_for_every_action(service_factory):
    api = service_factory(controller={"resync_interval": 3600})
    lb = api.create_lb()
    path = f"{LBS}/{lb['id']}"
    set_lb_status(api, lb["id"], "DELETED")
    not_found = {"faultcode": "Client", "debuginfo": None,
                 "faultstring": f"Load Balancer {lb['id']} not found."}
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("PUT", "/failover"),
                           ("GET", "/status"), ("GET", "/statuses"), ("GET", "/stats")):
        body = {"loadbalancer": {}} if (method, suffix) == ("PUT", "") else None
        assert api.call(method, path + suffix, body) == (404, not_found), (method, suffix)


def add_listener(api: Any, lb_id: str) -> str:
    code, body = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lb_id)
    return body["listener"]["id"]


def test_delete_with_children_needs_cascade(service_factory):
    api = service_factory(controller={"resync_interval": 3600})
    lb = api.create_lb()
    path = f"{LBS}/{lb['id']}"
    listener_id = add_listener(api, lb["id"])
    children = {"faultcode": "Client", "debuginfo": None, "faultstring":
                f"Validation failure: Cannot delete Load Balancer {lb['id']} - it has children"}
    assert api.delete(path) == (400, children)
    for value in ("false", "0", "no"):
        assert api.delete(f"{path}?cascade={value}") == (400, children)
    # As upstream, the children check comes before the state check.
    set_lb_status(api, lb["id"], "PENDING_UPDATE")
    assert api.delete(path) == (400, children)
    assert api.delete(f"{path}?cascade=true") == (
        409, invalid_state("PENDING_UPDATE", lb["id"]))
    set_lb_status(api, lb["id"], "ACTIVE")
    assert api.get(f"/v2/lbaas/listeners/{listener_id}")[0] == 200
    with paused(api):
        code, _ = api.delete(f"{path}?cascade=True")
        assert code == 204
        code, body = api.get(f"/v2/lbaas/listeners/{listener_id}")
        assert code == 200 and body["listener"]["provisioning_status"] == "PENDING_DELETE"
        assert api.get(path)[1]["loadbalancer"]["provisioning_status"] == "PENDING_DELETE"
    api.wait_lb(lb["id"], "DELETED")
    code, body = api.get(f"/v2/lbaas/listeners/{listener_id}")
    assert code == 404


def test_delete_pool_only_child_needs_cascade(api):
    lb = api.create_lb()
    code, body = api.post("/v2/lbaas/pools", {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    pool_id = body["pool"]["id"]
    api.wait_lb(lb["id"])
    code, body = api.delete(f"{LBS}/{lb['id']}")
    assert code == 400 and body["faultstring"].endswith("- it has children")
    code, _ = api.delete(f"{LBS}/{lb['id']}?cascade=1")
    assert code == 204
    api.wait_lb(lb["id"], "DELETED")
    assert api.get(f"/v2/lbaas/pools/{pool_id}")[0] == 404

