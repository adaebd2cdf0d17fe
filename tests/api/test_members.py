"""Member endpoints (single and batch) as clients see them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from lbaas.api.common import utcnow
from lbaas.api.policy import RequestContext
from lbaas.store import tables as t

POOLS = "/v2/lbaas/pools"
LISTENERS = "/v2/lbaas/listeners"

MEMBER_KEYS = {
    "id", "name", "operating_status", "provisioning_status", "admin_state_up", "address",
    "protocol_port", "weight", "backup", "subnet_id", "project_id", "tenant_id", "created_at",
    "updated_at", "monitor_address", "monitor_port", "tags", "vnic_type",
}


# -- helpers -----------------------------------------------------------------------------------

def make_listener(api: Any, lb_id: str, protocol: str = "HTTP", port: int = 80) -> str:
    """A listener through the API when it exists, else a row written directly."""
    code, body = api.post(LISTENERS, {"listener": {
        "loadbalancer_id": lb_id, "protocol": protocol, "protocol_port": port}})
    if code == 201:
        api.wait_lb(lb_id)
        return body["listener"]["id"]
    assert code in (404, 405), body
    listener_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.listener.insert().values(
            id=listener_id, project_id="admin", load_balancer_id=lb_id,
            provisioning_status="ACTIVE", operating_status="OFFLINE", admin_state_up=True,
            protocol=protocol, protocol_port=port, connection_limit=-1, created_at=utcnow()))
    return listener_id


def make_pool(api: Any, lb_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **fields}
    if lb_id:
        body["loadbalancer_id"] = lb_id
    code, data = api.post(POOLS, {"pool": body})
    assert code == 201, data
    api.wait_lb(data["pool"]["loadbalancers"][0]["id"])
    return data["pool"]


def add_monitor(api: Any, pool: dict[str, Any]) -> None:
    """A health monitor through the API when it exists, else a row written directly."""
    code, body = api.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}})
    if code == 201:
        api.wait_lb(pool["loadbalancers"][0]["id"])
        return
    assert code in (404, 405), body
    with api.service.engine.begin() as conn:
        conn.execute(t.health_monitor.insert().values(
            id=str(uuid.uuid4()), project_id="admin", pool_id=pool["id"],
            provisioning_status="ACTIVE", operating_status="ONLINE", admin_state_up=True,
            type="TCP", delay=5, timeout=3, max_retries=3, created_at=utcnow()))


def set_status(api: Any, table: Any, ident: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == ident)
                     .values(provisioning_status=status))


def row(api: Any, table: Any, ident: str) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.id == ident)).first()


def members_of(api: Any, pool_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    code, body = api.get(f"{POOLS}/{pool_id}/members")
    assert code == 200
    return {(m["address"], m["protocol_port"]): m for m in body["members"]}


def add_member(api: Any, pool: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"address": "192.0.2.10", "protocol_port": 80, **fields}
    code, data = api.post(f"{POOLS}/{pool['id']}/members", {"member": body})
    assert code == 201, data
    api.wait_lb(pool["loadbalancers"][0]["id"])
    return data["member"]


def fault(body: Any) -> str:
    return body["faultstring"]


@pytest.fixture()
def setup(api: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    lb = api.create_lb()
    return api, lb, make_pool(api, lb["id"])


@pytest.fixture()
def frozen(service_factory: Any) -> Any:
    """A service whose resync never runs; ``freeze`` then stops reconciles entirely."""
    return service_factory(controller={"resync_interval": 3600})


def freeze(api: Any) -> None:
    api.service.app.state.notify = lambda _lb_id: None


def enforce_quotas(api: Any) -> None:
    class Admin:
        async def authenticate(self, req: Any) -> RequestContext:
            return RequestContext(project_id="admin", roles=frozenset({"admin"}),
                                  is_admin=True, noauth=False)

    api.service.app.authenticator = Admin()


# -- create ------------------------------------------------------------------------------------

def test_create_renders_upstream_shape_with_defaults(setup):
    api, lb, pool = setup
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 80, "tags": ["t"]}})
    assert code == 201, body
    member = body["member"]
    assert set(member) == MEMBER_KEYS
    assert member["provisioning_status"] == "PENDING_CREATE"
    assert member["operating_status"] == "NO_MONITOR"
    assert (member["weight"], member["backup"], member["admin_state_up"]) == (1, False, True)
    assert member["vnic_type"] == "normal" and member["name"] == ""
    assert member["subnet_id"] is None and member["monitor_address"] is None
    assert member["tenant_id"] == member["project_id"] == lb["project_id"]
    assert member["tags"] == ["t"]
    api.wait_lb(lb["id"])
    code, body = api.get(f"{POOLS}/{pool['id']}/members/{member['id']}")
    assert code == 200 and body["member"]["provisioning_status"] == "ACTIVE"
    code, body = api.get(f"{POOLS}/{pool['id']}")
    assert body["pool"]["members"] == [{"id": member["id"]}]


def test_create_with_all_fields_and_monitor_gives_offline(setup):
    api, _lb, pool = setup
    add_monitor(api, pool)
    subnet = api.subnet_id("private-subnet")
    member = add_member(api, pool, name="m", weight=0, backup=True, admin_state_up=False,
                        subnet_id=subnet, monitor_address="192.0.2.99", monitor_port=8080,
                        address="2001:db8::10", protocol_port=443)
    assert member["operating_status"] == "OFFLINE"
    assert (member["name"], member["weight"], member["backup"]) == ("m", 0, True)
    assert member["admin_state_up"] is False and member["subnet_id"] == subnet
    assert (member["monitor_address"], member["monitor_port"]) == ("192.0.2.99", 8080)
    assert member["address"] == "2001:db8::10"


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"address": "169.254.169.254"}, 400,
     "169.254.169.254 is not a valid option for member address"),
    ({"subnet_id": "5f0c3c2e-0000-4e59-9d0b-6c7b9f1e2a10"}, 400,
     "Subnet 5f0c3c2e-0000-4e59-9d0b-6c7b9f1e2a10 not found."),
    ({"request_sriov": True}, 400,
     "The load balancer flavor does not allow SR-IOV member ports."),
    ({"weight": 257}, 400, "Invalid input for field/attribute weight. Value: '257'. Value "
     "should be lower or equal to 256"),
    ({"weight": -1}, 400, None),
    ({"protocol_port": 0}, 400, None),
    ({"protocol_port": 65536}, 400, None),
    ({"monitor_port": 0}, 400, None),
    ({"monitor_address": "nope"}, 400, None),
    ({"address": "not-an-ip"}, 400, None),
    ({"address": None}, 400, None),
    ({"description": "x"}, 400, None),
])
def test_create_validation(setup, fields, status, message):
    api, _lb, pool = setup
    body = {"address": "192.0.2.10", "protocol_port": 80, **fields}
    code, data = api.post(f"{POOLS}/{pool['id']}/members", {"member": body})
    assert code == status, data
    if message:
        assert fault(data) == message
    assert members_of(api, pool["id"]) == {}


def test_reserved_ips_follow_settings(service_factory):
    api = service_factory(networking={"reserved_ips": ["192.0.2.66"]})
    lb = api.create_lb()
    pool = make_pool(api, lb["id"])
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.66", "protocol_port": 80}})
    assert code == 400
    assert fault(body) == "192.0.2.66 is not a valid option for member address"
    add_member(api, pool, address="169.254.169.254")


def test_sriov_needs_flavor_permission(api):
    profile, flavor = str(uuid.uuid4()), str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.flavor_profile.insert().values(
            id=profile, name="sriov", provider_name="amphora",
            flavor_data=json.dumps({"allow_member_sriov": True})))
        conn.execute(t.flavor.insert().values(id=flavor, name="sriov", enabled=True,
                                              flavor_profile_id=profile))
    lb = api.create_lb(flavor_id=flavor)
    pool = make_pool(api, lb["id"])
    member = add_member(api, pool, request_sriov=True)
    assert member["vnic_type"] == "direct"


def test_duplicate_address_and_port_is_409(setup):
    api, _lb, pool = setup
    add_member(api, pool)
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 80}})
    assert code == 409
    assert fault(body) == ("Another member on this pool is already using ip 192.0.2.10 on "
                           "protocol_port 80")
    add_member(api, pool, protocol_port=81)


def test_udp_pool_cannot_mix_families_on_amphora(api):
    lb = api.create_lb()
    pool = make_pool(api, listener_id=make_listener(api, lb["id"], "UDP", 53), protocol="UDP")
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "2001:db8::1", "protocol_port": 53}})
    assert code == 501
    assert fault(body) == ("Provider 'amphora' does not support a requested option: This "
                           "provider doesn't support mixing IPv4 and IPv6 addresses for its "
                           "VIP and members in UDP load balancers.")
    add_member(api, pool, address="192.0.2.5", protocol_port=53)


def test_unknown_pool_and_member_in_wrong_pool_are_404(setup):
    api, lb, pool = setup
    other = make_pool(api, lb["id"])
    member = add_member(api, pool)
    missing = str(uuid.uuid4())
    # upstream's pool controller looks the pool up in _lookup, before the body: webob's body
    parent = {"code": 404, "title": "Bad Request", "description": f"Pool {missing} not found."}
    assert api.get(f"{POOLS}/{missing}/members") == (404, parent)
    assert api.post(f"{POOLS}/{missing}/members", {"member": {"bogus": 1}}) == (404, parent)
    assert api.put(f"{POOLS}/{missing}/members", {"members": []}) == (404, parent)
    assert api.get(f"{POOLS}/{missing}/members/{member['id']}") == (404, parent)
    wrong = f"{POOLS}/{other['id']}/members/{member['id']}"
    expected = f"Member {member['id']} not found."
    for method in ("get", "delete"):
        code, body = getattr(api, method)(wrong)
        assert (code, fault(body)) == (404, expected)
    code, body = api.put(wrong, {"member": {"name": "x"}})
    assert (code, fault(body)) == (404, expected)
    code, body = api.get(f"{POOLS}/{pool['id']}/members/{missing}")
    assert code == 404 and fault(body) == f"Member {missing} not found."


def test_quota(setup):
    api, _lb, pool = setup
    enforce_quotas(api)
    with api.service.engine.begin() as conn:
        conn.execute(t.quota.insert().values(project_id="admin", member=2))
    add_member(api, pool, protocol_port=1)
    code, body = api.put(f"{POOLS}/{pool['id']}/members", {"members": [
        {"address": "192.0.2.10", "protocol_port": 1},
        {"address": "192.0.2.10", "protocol_port": 2},
        {"address": "192.0.2.10", "protocol_port": 3}]})
    assert code == 403 and fault(body) == "Quota has been met for resources: Member"
    add_member(api, pool, protocol_port=2)
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 3}})
    assert code == 403 and fault(body) == "Quota has been met for resources: Member"
    # replacing one member by another is no net increase
    code, body = api.put(f"{POOLS}/{pool['id']}/members", {"members": [
        {"address": "192.0.2.10", "protocol_port": 1},
        {"address": "192.0.2.10", "protocol_port": 3}]})
    assert code == 202, body


# -- locking -----------------------------------------------------------------------------------

def test_changes_need_active_pool_and_lb(setup):
    api, lb, pool = setup
    member = add_member(api, pool)
    base = f"{POOLS}/{pool['id']}/members"
    calls = (("post", base, {"member": {"address": "192.0.2.1", "protocol_port": 1}}),
             ("put", f"{base}/{member['id']}", {"member": {"name": "x"}}),
             ("delete", f"{base}/{member['id']}", None),
             ("put", base, {"members": []}))
    set_status(api, t.pool, pool["id"], "ERROR")
    for method, path, body in calls:
        args = (path, body) if body is not None else (path,)
        code, data = getattr(api, method)(*args)
        assert (code, fault(data)) == (
            409, f"Pool {pool['id']} is immutable and cannot be updated."), (method, path)
    set_status(api, t.pool, pool["id"], "ACTIVE")
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    for method, path, body in calls:
        args = (path, body) if body is not None else (path,)
        code, data = getattr(api, method)(*args)
        assert (code, fault(data)) == (
            409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")
    assert set(members_of(api, pool["id"])) == {("192.0.2.10", 80)}


def test_create_locks_lb_pool_and_listeners(frozen):
    api = frozen
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    pool = make_pool(api, listener_id=listener)
    freeze(api)
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 80}})
    assert code == 201
    assert row(api, t.load_balancer, lb["id"]).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.pool, pool["id"]).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.listener, listener).provisioning_status == "PENDING_UPDATE"
    code, body = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.11", "protocol_port": 80}})
    assert (code, fault(body)) == (409, f"Pool {pool['id']} is immutable and cannot be "
                                        "updated.")


# -- update / delete ---------------------------------------------------------------------------

def test_update_and_null_resets(setup):
    api, lb, pool = setup
    member = add_member(api, pool, weight=5, backup=True, monitor_port=81,
                        monitor_address="192.0.2.50", tags=["a"])
    path = f"{POOLS}/{pool['id']}/members/{member['id']}"
    code, body = api.put(path, {"member": {"name": "n", "weight": None, "backup": None,
                                           "monitor_port": None, "monitor_address": None,
                                           "admin_state_up": False, "tags": ["b"]}})
    assert code == 200, body
    view = body["member"]
    assert view["provisioning_status"] == "PENDING_UPDATE"
    assert (view["name"], view["weight"], view["backup"]) == ("n", 1, False)
    assert view["monitor_port"] is None and view["monitor_address"] is None
    assert view["admin_state_up"] is False and view["tags"] == ["b"]
    assert view["updated_at"] is not None
    api.wait_lb(lb["id"])
    code, body = api.put(path, {"member": {"weight": 7}})
    assert code == 200 and body["member"]["weight"] == 7 and body["member"]["name"] == "n"
    api.wait_lb(lb["id"])
    for fields in ({"address": "192.0.2.1"}, {"protocol_port": 1}, {"subnet_id": None},
                   {"request_sriov": True}, {"weight": 300}):
        code, body = api.put(path, {"member": fields})
        assert code == 400, fields


def test_delete(setup):
    api, lb, pool = setup
    member = add_member(api, pool)
    path = f"{POOLS}/{pool['id']}/members/{member['id']}"
    code, body = api.delete(path)
    assert code == 204 and body is None
    api.wait_lb(lb["id"])
    code, body = api.get(path)
    assert code == 404


# -- batch -------------------------------------------------------------------------------------

def test_batch_creates_updates_and_deletes(frozen):
    api = frozen
    lb = api.create_lb()
    pool = make_pool(api, lb["id"])
    keep = add_member(api, pool, address="192.0.2.1", weight=5, backup=True,
                      monitor_port=99, name="keep", tags=["k"])
    gone = add_member(api, pool, address="192.0.2.22")
    freeze(api)
    code, body = api.put(f"{POOLS}/{pool['id']}/members", {"members": [
        {"address": "192.0.2.1", "protocol_port": 80},
        {"address": "192.0.2.3", "protocol_port": 80, "name": "new", "weight": 3}]})
    assert code == 202 and body is None
    members = members_of(api, pool["id"])
    assert set(members) == {("192.0.2.1", 80), ("192.0.2.22", 80), ("192.0.2.3", 80)}
    kept = members[("192.0.2.1", 80)]
    assert kept["id"] == keep["id"] and kept["provisioning_status"] == "PENDING_UPDATE"
    # omitted optional fields are reset to create defaults; name and tags stay
    assert (kept["weight"], kept["backup"], kept["monitor_port"]) == (1, False, None)
    assert kept["name"] == "keep" and kept["tags"] == ["k"]
    assert members[("192.0.2.22", 80)]["id"] == gone["id"]
    assert members[("192.0.2.22", 80)]["provisioning_status"] == "PENDING_DELETE"
    new = members[("192.0.2.3", 80)]
    assert new["provisioning_status"] == "PENDING_CREATE" and new["weight"] == 3
    assert new["operating_status"] == "NO_MONITOR" and new["name"] == "new"
    assert row(api, t.pool, pool["id"]).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.load_balancer, lb["id"]).provisioning_status == "PENDING_UPDATE"


def test_batch_settles_to_desired_set(setup):
    api, lb, pool = setup
    add_member(api, pool, address="192.0.2.1")
    add_member(api, pool, address="192.0.2.22")
    code, _ = api.put(f"{POOLS}/{pool['id']}/members", {"members": [
        {"address": "192.0.2.22", "protocol_port": 80, "weight": 9},
        {"address": "192.0.2.4", "protocol_port": 80}]})
    assert code == 202
    api.wait_lb(lb["id"])
    members = members_of(api, pool["id"])
    assert set(members) == {("192.0.2.22", 80), ("192.0.2.4", 80)}
    assert {m["provisioning_status"] for m in members.values()} == {"ACTIVE"}
    assert members[("192.0.2.22", 80)]["weight"] == 9


def test_batch_additive_only_never_deletes(setup):
    api, lb, pool = setup
    add_member(api, pool, address="192.0.2.1")
    code, _ = api.put(f"{POOLS}/{pool['id']}/members?additive_only=true", {"members": [
        {"address": "192.0.2.5", "protocol_port": 80}]})
    assert code == 202
    api.wait_lb(lb["id"])
    assert set(members_of(api, pool["id"])) == {("192.0.2.1", 80), ("192.0.2.5", 80)}
    code, _ = api.put(f"{POOLS}/{pool['id']}/members?additive_only=false", {"members": [
        {"address": "192.0.2.5", "protocol_port": 80}]})
    assert code == 202
    api.wait_lb(lb["id"])
    assert set(members_of(api, pool["id"])) == {("192.0.2.5", 80)}


def test_batch_empty_list_deletes_everything(setup):
    api, lb, pool = setup
    add_member(api, pool, address="192.0.2.1")
    add_member(api, pool, address="192.0.2.22")
    code, _ = api.put(f"{POOLS}/{pool['id']}/members", {"members": []})
    assert code == 202
    api.wait_lb(lb["id"])
    assert members_of(api, pool["id"]) == {}


def test_batch_that_changes_nothing_locks_nothing(frozen):
    api = frozen
    lb = api.create_lb()
    pool = make_pool(api, lb["id"])
    add_member(api, pool, address="192.0.2.1", weight=2, name="a")
    freeze(api)
    generation = row(api, t.load_balancer, lb["id"]).generation
    for query in ("", "?additive_only=true"):
        code, body = api.put(f"{POOLS}/{pool['id']}/members{query}", {"members": [
            {"address": "192.0.2.1", "protocol_port": 80, "weight": 2}]})
        assert code == 202 and body is None
    lb_row = row(api, t.load_balancer, lb["id"])
    assert lb_row.provisioning_status == "ACTIVE" and lb_row.generation == generation
    assert row(api, t.pool, pool["id"]).provisioning_status == "ACTIVE"
    assert {m["provisioning_status"] for m in members_of(api, pool["id"]).values()} == {
        "ACTIVE"}


def test_batch_rejects_duplicates_and_invalid_members(setup):
    api, _lb, pool = setup
    add_member(api, pool, address="192.0.2.1")
    path = f"{POOLS}/{pool['id']}/members"
    dup = "Validation failure: Member must be updated only once in the same request."
    for members in ([{"address": "192.0.2.1", "protocol_port": 80},
                     {"address": "192.0.2.1", "protocol_port": 80, "weight": 3}],
                    [{"address": "192.0.2.9", "protocol_port": 80},
                     {"address": "192.0.2.9", "protocol_port": 80}]):
        code, body = api.put(path, {"members": members})
        assert (code, fault(body)) == (400, dup)
    code, body = api.put(path, {"members": [{"address": "169.254.169.254",
                                             "protocol_port": 80}]})
    assert code == 400
    assert fault(body) == "169.254.169.254 is not a valid option for member address"
    missing = str(uuid.uuid4())
    code, body = api.put(path, {"members": [{"address": "192.0.2.7", "protocol_port": 80,
                                             "subnet_id": missing}]})
    assert (code, fault(body)) == (400, f"Subnet {missing} not found.")
    for bad in ({}, {"members": [{"address": "192.0.2.7"}]}, {"members": "x"},
                {"members": [], "other": 1}):
        code, body = api.put(path, bad)
        assert code == 400, bad
    assert set(members_of(api, pool["id"])) == {("192.0.2.1", 80)}


# -- list --------------------------------------------------------------------------------------

def test_list_filters_pagination_and_fields(setup):
    api, lb, pool = setup
    other = make_pool(api, lb["id"])
    ids = [add_member(api, pool, address=f"192.0.2.{i + 11}", protocol_port=80 + i % 2,
                      name=f"m{i}", tags=["even" if i % 2 == 0 else "odd"])["id"]
           for i in range(4)]
    add_member(api, other, address="192.0.2.200")
    base = f"{POOLS}/{pool['id']}/members"
    code, body = api.get(base)
    assert code == 200 and [m["id"] for m in body["members"]] == ids
    assert body["members_links"] == []
    code, body = api.get(f"{base}?limit=infinite")
    assert [link["rel"] for link in body["members_links"]] == ["next"]
    code, body = api.get(f"{base}?protocol_port=81")
    assert [m["id"] for m in body["members"]] == [ids[1], ids[3]]
    code, body = api.get(f"{base}?address=192.0.2.13")
    assert [m["id"] for m in body["members"]] == [ids[2]]
    code, body = api.get(f"{base}?tags-any=odd&name=m3")
    assert [m["id"] for m in body["members"]] == [ids[3]]
    code, body = api.get(f"{base}?limit=3")
    assert [m["id"] for m in body["members"]] == ids[:3]
    code, body = api.get(f"{base}?limit=3&marker={ids[2]}")
    assert [m["id"] for m in body["members"]] == ids[3:]
    assert [link["rel"] for link in body["members_links"]] == ["previous"]
    code, body = api.get(f"{base}?sort=name:desc&fields=name")
    assert body["members"] == [{"name": f"m{i}"} for i in (3, 2, 1, 0)]
    code, body = api.get(f"{base}?pool_id={other['id']}")  # ANDed with the path's pool
    assert (code, body["members"]) == (200, [])
    code, body = api.get(f"{base}?pool_id={pool['id']}&limit=1")
    assert [m["id"] for m in body["members"]] == ids[:1]
    code, body = api.get(f"{base}/{ids[0]}?fields=address&fields=weight")
    assert body == {"member": {"address": "192.0.2.11", "weight": 1}}
