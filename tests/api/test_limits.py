"""Hostile sizes and numbers get clear 400s, never 500s (issue 10 items 5 and 6): integers that
no database column holds, thousands of sort keys or tag filters, key-manager offsets past
2**63, and lists longer than the API accepts."""

from __future__ import annotations

from typing import Any

import pytest

LBS = "/v2/lbaas/loadbalancers"
KM = "/key-manager/v1"


@pytest.fixture()
def tree(api: Any) -> dict[str, Any]:
    lb = api.create_lb(name="limits")
    code, body = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    code, body = api.post("/v2/lbaas/pools", {"pool": {
        "listener_id": body["listener"]["id"], "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return {"lb": lb, "pool": body["pool"], "listener_id": body["pool"]["listeners"][0]["id"]}


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1, 10**20])
def test_huge_integers_are_400(api: Any, tree: dict[str, Any], value: int) -> None:
    code, err = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": tree["lb"]["id"], "protocol": "HTTP", "protocol_port": 81,
        "connection_limit": value}})
    assert code == 400 and "connection_limit" in err["faultstring"], err
    code, err = api.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": tree["pool"]["id"], "type": "HTTP", "delay": value, "timeout": 3,
        "max_retries": 3}})
    assert code == 400 and "delay" in err["faultstring"], err
    code, err = api.post(f"{KM}/secrets", {"name": "x", "bit_length": value})
    assert code == 400 and "bit_length" in err["description"], err
    for path in (LBS, "/v2/lbaas/listeners", "/networking/v2.0/networks"):
        assert api.get(path, params={"limit": str(value)})[0] in (200, 400), path
    code, err = api.get("/v2/lbaas/listeners", params={"connection_limit": str(value)})
    assert code == 400, err


@pytest.mark.parametrize("offset", ["99999999999999999999", str(2**63)])
def test_key_manager_offset_beyond_int64_is_400(api: Any, offset: str) -> None:
    for kind in ("secrets", "containers"):
        code, err = api.get(f"{KM}/{kind}", params={"offset": offset})
        assert code == 400 and err["title"] == "Bad Request" and "offset" in err["description"]
    assert api.get(f"{KM}/secrets", params={"offset": str(2**63 - 1)})[0] == 200


def test_thousands_of_sort_keys_are_400(api: Any) -> None:
    lb = api.create_lb(name="a")
    for params in ({"sort": ",".join(["name"] * 2000)},
                   {"sort": ",".join(["name:asc", "id:desc"] * 1000)},
                   [("sort_key", "name")] * 2000):
        code, err = api.get(LBS, params=params)
        assert code == 400 and "Too many sort keys" in err["faultstring"], err
    code, body = api.get(LBS, params={"sort": ",".join(["name:desc", "id"] * 20)})
    assert code == 200 and [x["id"] for x in body["loadbalancers"]] == [lb["id"]]


def test_thousands_of_tag_filters_are_400(api: Any) -> None:
    api.create_lb(name="t", tags=["0"])
    many = ",".join(str(i) for i in range(2000))
    for param in ("tags", "tags-any", "not-tags", "not-tags-any"):
        code, err = api.get(LBS, params={param: many})
        assert code == 400 and "Too many tags" in err["faultstring"], err
    code, body = api.get(LBS, params={"tags-any": ",".join(str(i) for i in range(100))})
    assert code == 200 and len(body["loadbalancers"]) == 1


def test_list_sizes_are_capped(api: Any, tree: dict[str, Any]) -> None:
    subnet = api.subnet_id("public-subnet")
    code, err = api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet,
                                                "tags": [f"t{i}" for i in range(80000)]}})
    assert code == 400, err
    assert err["faultstring"] == ("Invalid input for field/attribute tags. Value: 'a list of "
                                  "80000 items'. Value should contain at most 100 item(s)")
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": subnet,
                                                 "tags": [f"t{i}" for i in range(100)]}})
    assert code == 201 and len(body["loadbalancer"]["tags"]) == 100
    listener = f"/v2/lbaas/listeners/{tree['listener_id']}"
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(1001)]
    code, err = api.put(listener, {"listener": {"allowed_cidrs": cidrs}})
    assert code == 400 and "at most 1000 item(s)" in err["faultstring"], err
    code, err = api.put(listener, {"listener": {"sni_container_refs": ["x"] * 101}})
    assert code == 400 and "sni_container_refs" in err["faultstring"] \
        and "at most 100 item(s)" in err["faultstring"], err
    members = f"/v2/lbaas/pools/{tree['pool']['id']}/members"
    code, err = api.post(members, {"member": {"address": "172.24.4.40", "protocol_port": 80,
                                              "tags": ["x"] * 101}})
    assert code == 400 and "at most 100 item(s)" in err["faultstring"], err
