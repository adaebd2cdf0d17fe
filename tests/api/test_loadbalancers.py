"""Load balancer endpoints as clients see them."""

from __future__ import annotations

import uuid

LBS = "/v2/lbaas/loadbalancers"


def test_create_reaches_active_with_vip_from_pool(api):
    code, body = api.post(LBS, {"loadbalancer": {
        "name": "lb1", "vip_subnet_id": api.subnet_id("public-subnet")}})
    assert code == 201, body
    lb = body["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert lb["operating_status"] == "OFFLINE"
    assert lb["tenant_id"] == lb["project_id"]
    assert lb["vip_address"].startswith("203.0.113.")
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
                                              "vip_address": "203.0.113.251"}})
    assert code == 400
    code, _ = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub,
                                              "vip_address": "203.0.113.77"}})
    assert code == 201
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": sub,
                                                 "vip_address": "203.0.113.77"}})
    assert code == 409 and "already in use" in body["faultstring"]


def test_update_returns_200_and_409_while_pending(api):
    lb = api.create_lb(name="a")
    code, body = api.put(f"{LBS}/{lb['id']}", {"loadbalancer": {"name": "b"}})
    assert code == 200
    assert body["loadbalancer"]["name"] == "b"
    assert body["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.put(f"{LBS}/{lb['id']}", {"loadbalancer": {"vip_address": "1.2.3.4"}})
    assert code == 400


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
