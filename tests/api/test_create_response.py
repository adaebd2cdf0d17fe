"""A create's response shows the object as a read right after shows it.

The creates render the row they inserted instead of reading it back (and a new object's
children, none or the ones the same request made, without queries): these tests pin that the
two views agree, tags (in the database's order) and defaults included. Statuses and
``updated_at`` move on as the worker acts, so they are left out of the comparison.
"""

from __future__ import annotations

from typing import Any

MOVING = {"provisioning_status", "operating_status", "updated_at"}
TAGS = ["b-tag", "A-tag", "B2", "c_tag"]  # databases order these unlike Python


NESTED = {"members", "healthmonitor", "l7policies"}  # full objects in the single-call answer


def _same(created: dict[str, Any], read: dict[str, Any]) -> None:
    for key, value in created.items():
        if key in MOVING or key in NESTED:
            continue
        if key in ("listeners", "pools") and any(len(v) > 1 for v in value):
            assert [v["id"] for v in value] == [v["id"] for v in read[key]]  # full vs ids
            continue
        assert read.get(key) == value, (key, value, read.get(key))


def _get(api: Any, path: str, key: str) -> dict[str, Any]:
    code, body = api.get(path)
    assert code == 200, body
    return body[key]


def test_each_create_answers_what_a_read_shows(api: Any) -> None:
    code, lb = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet"), "tags": TAGS}})
    assert code == 201, lb
    lb = lb["loadbalancer"]
    assert lb["listeners"] == [] and lb["pools"] == []
    api.wait_lb(lb["id"])
    _same(lb, _get(api, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer"))

    code, listener = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80, "tags": TAGS}})
    assert code == 201, listener
    listener = listener["listener"]
    api.wait_lb(lb["id"])
    _same(listener, _get(api, f"/v2/lbaas/listeners/{listener['id']}", "listener"))

    code, pool = api.post("/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, pool
    pool = pool["pool"]
    assert pool["listeners"] == [{"id": listener["id"]}] and pool["tags"] == []
    api.wait_lb(lb["id"])
    _same(pool, _get(api, f"/v2/lbaas/pools/{pool['id']}", "pool"))

    code, member = api.post(f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
        "address": "10.201.0.10", "protocol_port": 8080, "tags": TAGS}})
    assert code == 201, member
    member = member["member"]
    api.wait_lb(lb["id"])
    _same(member, _get(api, f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}",
                       "member"))

    code, hm = api.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}})
    assert code == 201, hm
    hm = hm["healthmonitor"]
    api.wait_lb(lb["id"])
    _same(hm, _get(api, f"/v2/lbaas/healthmonitors/{hm['id']}", "healthmonitor"))


def test_single_call_create_answers_what_reads_show(api: Any) -> None:
    code, body = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet"), "tags": TAGS,
        "listeners": [{"protocol": "HTTP", "protocol_port": 80, "tags": TAGS,
                       "default_pool": {"name": "web"}},
                      {"protocol": "TCP", "protocol_port": 22}],
        "pools": [{"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                   "tags": TAGS,
                   "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3,
                                     "max_retries": 3, "tags": TAGS},
                   "members": [{"address": "10.201.0.11", "protocol_port": 8080},
                               {"address": "10.201.0.10", "protocol_port": 8080,
                                "tags": TAGS}]}]}})
    assert code == 201, body
    lb = body["loadbalancer"]
    api.wait_lb(lb["id"])
    _same(lb, _get(api, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer"))
    assert [x["protocol_port"] for x in lb["listeners"]] == [80, 22]
    for listener in lb["listeners"]:
        _same(listener, _get(api, f"/v2/lbaas/listeners/{listener['id']}", "listener"))
    (pool,) = lb["pools"]
    read = _get(api, f"/v2/lbaas/pools/{pool['id']}", "pool")
    _same(pool, read)
    assert read["members"] == [{"id": m["id"]} for m in pool["members"]]
    assert [m["address"] for m in pool["members"]] == ["10.201.0.11", "10.201.0.10"]
    for member in pool["members"]:
        _same(member, _get(api, f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}",
                           "member"))
    _same(pool["healthmonitor"], _get(
        api, f"/v2/lbaas/healthmonitors/{pool['healthmonitor']['id']}", "healthmonitor"))
    assert pool["healthmonitor"]["tags"] == _get(
        api, f"/v2/lbaas/healthmonitors/{pool['healthmonitor']['id']}", "healthmonitor")["tags"]


def test_duplicate_members_in_one_call_are_refused(api: Any) -> None:
    twice = [{"address": "10.201.0.10", "protocol_port": 8080},
             {"address": "10.201.0.10", "protocol_port": 8080}]
    code, body = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet"),
        "pools": [{"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                   "members": twice}]}})
    assert code == 409, body
    assert body["faultstring"] == ("Another member on this pool is already using ip "
                                   "10.201.0.10 on protocol_port 8080")
