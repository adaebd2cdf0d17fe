"""Health monitor endpoints as clients see them: defaults, validation, locking, members, lists.

Listeners, pools and members are created through their own endpoints; the database is only
read to observe statuses and written to simulate states a client cannot produce.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from lbaas.api.policy import RequestContext
from lbaas.store import tables as t

HMS = "/v2/lbaas/healthmonitors"
LISTENERS = "/v2/lbaas/listeners"
POOLS = "/v2/lbaas/pools"

RESPONSE_KEYS = {
    "id", "name", "type", "delay", "timeout", "max_retries", "max_retries_down", "http_method",
    "url_path", "expected_codes", "admin_state_up", "project_id", "tenant_id", "pools",
    "provisioning_status", "operating_status", "created_at", "updated_at", "tags",
    "http_version", "domain_name",
}


def add_listener(api: Any, lb: dict[str, Any], protocol: str = "HTTP", port: int = 80) -> str:
    code, body = api.post(LISTENERS, {"listener": {
        "loadbalancer_id": lb["id"], "protocol": protocol, "protocol_port": port}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["listener"]["id"]


def add_pool(api: Any, lb: dict[str, Any], protocol: str = "HTTP",
             listener_id: str | None = None) -> str:
    parent = {"listener_id": listener_id} if listener_id else {"loadbalancer_id": lb["id"]}
    code, body = api.post(POOLS, {"pool": {"protocol": protocol, "lb_algorithm": "ROUND_ROBIN",
                                           **parent}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["pool"]["id"]


def add_member(api: Any, lb: dict[str, Any], pool_id: str, address: str) -> dict[str, Any]:
    code, body = api.post(f"{POOLS}/{pool_id}/members", {"member": {
        "address": address, "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["member"]


def status_of(api: Any, table: Any, ident: str, column: str = "provisioning_status") -> str:
    with api.service.engine.connect() as conn:
        return conn.execute(select(table.c[column]).where(table.c.id == ident)).scalar_one()


def set_status(api: Any, table: Any, ident: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == ident)
                     .values(provisioning_status=status))


@contextlib.contextmanager
def paused(api: Any) -> Iterator[list[str]]:
    """Hold back the reconciler (handlers' notify and the resync loop) so the statuses a
    handler set can be observed."""
    state, queue = api.service.app.state, api.service.queue
    original = state.notify
    held: list[str] = []
    state.notify = queue.notify = held.append
    api.client.portal.call(queue.wait_idle)  # let a reconcile already under way finish
    try:
        yield held
    finally:
        del queue.notify  # back to the class method
        state.notify = original
        for lb_id in set(held):
            original(lb_id)


@pytest.fixture()
def env(api: Any) -> dict[str, Any]:
    lb = api.create_lb(name="lb")
    listener = add_listener(api, lb)
    pool = add_pool(api, lb, listener_id=listener)
    return {"api": api, "lb": lb, "pool": pool, "listener": listener}


def hm_body(pool: str, **fields: Any) -> dict[str, Any]:
    return {"healthmonitor": {"pool_id": pool, "type": "HTTP", "delay": 5, "timeout": 3,
                              "max_retries": 2, **fields}}


def make(api: Any, lb: dict[str, Any], pool_id: str, **fields: Any) -> dict[str, Any]:
    code, body = api.post(HMS, hm_body(pool_id, **fields))
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["healthmonitor"]


def enforce_quotas(api: Any) -> None:
    """Quotas are off under noauth; authenticate as a (non-noauth) admin instead."""
    class Admin:
        async def authenticate(self, req: Any) -> RequestContext:
            return RequestContext(project_id="admin", roles=frozenset({"admin"}),
                                  is_admin=True, noauth=False)

    api.service.app.authenticator = Admin()


def fault(result: tuple[int, Any]) -> tuple[int, str]:
    code, body = result
    return code, body["faultstring"]


# create -----------------------------------------------------------------------------------------
def test_create_http_defaults_and_locks_parents(env):
    api, lb, pool, listener = env["api"], env["lb"], env["pool"], env["listener"]
    with paused(api):
        code, body = api.post(HMS, hm_body(pool, name="hm1", tags=["a"]))
        assert code == 201, body
        hm = body["healthmonitor"]
        assert set(hm) == RESPONSE_KEYS
        assert hm["provisioning_status"] == "PENDING_CREATE"
        assert hm["operating_status"] == "OFFLINE"
        assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == ("GET", "/", "200")
        assert hm["max_retries_down"] == 3
        assert hm["pools"] == [{"id": pool}]
        assert hm["tenant_id"] == hm["project_id"] == lb["project_id"]
        assert hm["tags"] == ["a"] and hm["name"] == "hm1"
        assert hm["http_version"] is None and hm["domain_name"] is None
        assert status_of(api, t.load_balancer, lb["id"]) == "PENDING_UPDATE"
        assert status_of(api, t.pool, pool) == "PENDING_UPDATE"
        assert status_of(api, t.listener, listener) == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.get(f"{HMS}/{hm['id']}")
    assert code == 200
    assert body["healthmonitor"]["provisioning_status"] == "ACTIVE"
    assert body["healthmonitor"]["operating_status"] == "ONLINE"
    assert status_of(api, t.pool, pool) == "ACTIVE"
    assert status_of(api, t.listener, listener) == "ACTIVE"


def test_non_http_types_have_null_http_fields(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool, type="TCP", max_retries_down=5)
    assert hm["http_method"] is None and hm["url_path"] is None
    assert hm["expected_codes"] is None and hm["max_retries_down"] == 5
    for key, value in (("http_method", "GET"), ("url_path", "/x"), ("expected_codes", "200")):
        other = add_pool(api, lb)
        assert fault(api.post(HMS, hm_body(other, type="TLS-HELLO", **{key: value}))) == (
            400, f"{key} is not a valid option for health monitors of type TLS-HELLO")


def test_http_options_and_version(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool, type="HTTPS", http_method="HEAD", url_path="/health?x=1",
              expected_codes="200, 202", http_version=1.1, domain_name="www.example.com")
    assert hm["http_method"] == "HEAD" and hm["url_path"] == "/health?x=1"
    assert hm["expected_codes"] == "200, 202"
    assert hm["http_version"] == 1.1 and hm["domain_name"] == "www.example.com"


def test_pool_missing_and_duplicate(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    missing = str(uuid.uuid4())
    assert fault(api.post(HMS, hm_body(missing))) == (404, f"Pool {missing} not found.")
    make(api, lb, pool)
    assert fault(api.post(HMS, hm_body(pool))) == (409, "This pool already has a health monitor")


@pytest.mark.parametrize(("pool_protocol", "hm_type", "message"), [
    ("UDP", "HTTPS", "Validation failure: The associated pool protocol is UDP, so only a "
                     "UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported."),
    ("SCTP", "PING", "Validation failure: The associated pool protocol is SCTP, so only a "
                     "UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported."),
    ("HTTP", "UDP-CONNECT", "Validation failure: The UDP-CONNECT type is only supported for "
                            "pools of type UDP/SCTP."),
    ("TCP", "SCTP", "Validation failure: The SCTP type is only supported for pools of type "
                    "UDP/SCTP."),
])
def test_type_must_suit_pool_protocol(env, pool_protocol, hm_type, message):
    api, lb = env["api"], env["lb"]
    pool = add_pool(api, lb, pool_protocol)
    assert fault(api.post(HMS, hm_body(pool, type=hm_type))) == (400, message)


@pytest.mark.parametrize(("pool_protocol", "hm_type"), [
    ("UDP", "UDP-CONNECT"), ("UDP", "SCTP"), ("SCTP", "TCP"), ("UDP", "HTTP"),
    ("PROXY", "TLS-HELLO"), ("HTTPS", "PING"), ("PROXYV2", "HTTPS"),
])
def test_compatible_types_accepted(env, pool_protocol, hm_type):
    api, lb = env["api"], env["lb"]
    pool = add_pool(api, lb, pool_protocol)
    code, body = api.post(HMS, hm_body(pool, type=hm_type))
    assert code == 201, body


def test_udp_connect_minimum_delay(env):
    api, lb = env["api"], env["lb"]
    pool = add_pool(api, lb, "UDP")
    assert fault(api.post(HMS, hm_body(pool, type="UDP-CONNECT", delay=2))) == (
        400, "Validation failure: The request delay value 2 should be larger than 3 for "
             "UDP-CONNECT health monitor type.")
    hm = make(api, lb, pool, type="UDP-CONNECT", delay=3)
    code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {"delay": 1}})
    assert code == 400 and "should be larger than 3" in body["faultstring"]


def test_ping_disabled_by_setting(service_factory):
    api = service_factory(api={"allow_ping_health_monitors": False})
    lb = api.create_lb()
    pool = add_pool(api, lb)
    assert fault(api.post(HMS, hm_body(pool, type="PING"))) == (
        400, "The selected type is not allowed in this deployment: PING")
    assert api.post(HMS, hm_body(str(uuid.uuid4()), type="PING"))[0] == 400  # before 404
    code, _ = api.post(HMS, hm_body(pool, type="TCP"))
    assert code == 201


@pytest.mark.parametrize(("fields", "needle"), [
    ({"delay": -1}, "Invalid input for field/attribute delay. Value: '-1'. Value should be "
                    "greater or equal to 0"),
    ({"timeout": -1}, "field/attribute timeout"),
    ({"max_retries": 0}, "field/attribute max_retries"),
    ({"max_retries": 11}, "Value should be lower or equal to 10"),
    ({"max_retries_down": 0}, "field/attribute max_retries_down"),
    ({"max_retries_down": 11}, "field/attribute max_retries_down"),
    ({"type": "ICMP"}, "Value should be one of: HTTP, HTTPS, PING"),
    ({"http_method": "FETCH"}, "field/attribute http_method"),
    ({"url_path": "health"}, "Value must be a valid URL Path string"),
    ({"url_path": "http://example.com/health"}, "Value must be a valid URL Path string"),
    ({"url_path": "//example.com/health"}, "Value must be a valid URL Path string"),
    ({"url_path": "/he alth"}, "Value must be a valid URL Path string"),
    ({"expected_codes": "abc"}, "Value should match the pattern"),
    ({"expected_codes": "200-"}, "Value should match the pattern"),
    ({"expected_codes": "2000"}, "Value should match the pattern"),
    ({"http_version": 2.0}, "Value should be one of: 1.0, 1.1"),
    ({"domain_name": "-bad-.example"}, "field/attribute domain_name"),
    ({"domain_name": "www.example.com"}, "Validation failure: 'http_version' must be "
                                         "specified when 'domain_name' is provided."),
    ({"domain_name": "example.com", "http_version": 1.0},
     "http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain name "
     "health check"),
    ({"pool_id": "nope"}, "Value should be UUID format"),
    ({"bogus": 1}, "Unknown attribute"),
])
def test_create_validation(env, fields, needle):
    api, pool = env["api"], env["pool"]
    code, body = api.post(HMS, hm_body(pool, **fields))
    assert code == 400, body
    assert needle in body["faultstring"]


@pytest.mark.parametrize("missing", ["pool_id", "type", "delay", "timeout", "max_retries"])
def test_required_fields(env, missing):
    api, pool = env["api"], env["pool"]
    body = hm_body(pool)
    del body["healthmonitor"][missing]
    code, data = api.post(HMS, body)
    assert code == 400
    assert data["faultstring"] == (f"Invalid input for field/attribute {missing}. Value: "
                                   "'None'. Mandatory field missing.")


@pytest.mark.parametrize("codes", ["200", "200,202", "200, 202, 204", "200-204"])
def test_expected_codes_forms(env, codes):
    api, pool = env["api"], env["pool"]
    code, body = api.post(HMS, hm_body(pool, expected_codes=codes))
    assert code == 201, body
    assert body["healthmonitor"]["expected_codes"] == codes


def test_quota(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    enforce_quotas(api)
    other = add_pool(api, lb)
    with api.service.engine.begin() as conn:
        conn.execute(t.quota.insert().values(project_id=lb["project_id"], health_monitor=1))
    make(api, lb, pool)
    assert fault(api.post(HMS, hm_body(other))) == (
        403, "Quota has been met for resources: Health Monitor")


# locking ----------------------------------------------------------------------------------------
def test_pool_and_lb_must_be_active(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    set_status(api, t.pool, pool, "PENDING_UPDATE")
    assert fault(api.post(HMS, hm_body(pool))) == (
        409, f"Pool {pool} is immutable and cannot be updated.")
    set_status(api, t.pool, pool, "ACTIVE")
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    assert fault(api.post(HMS, hm_body(pool))) == (
        409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")
    set_status(api, t.load_balancer, lb["id"], "ACTIVE")
    hm = make(api, lb, pool)
    # ERROR rather than PENDING_*: the resync loop would settle a pending LB behind our back
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    code, _ = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {"name": "x"}})
    assert code == 409
    code, _ = api.delete(f"{HMS}/{hm['id']}")
    assert code == 409


def test_second_change_while_pending_is_409(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    with paused(api):
        code, body = api.post(HMS, hm_body(pool))
        assert code == 201
        code, data = api.put(f"{HMS}/{body['healthmonitor']['id']}",
                             {"healthmonitor": {"name": "n"}})
        assert code == 409
        assert data["faultstring"] == f"Pool {pool} is immutable and cannot be updated."
    api.wait_lb(lb["id"])


# members ----------------------------------------------------------------------------------------
def test_members_leave_and_return_to_no_monitor(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    m1 = add_member(api, lb, pool, "192.0.2.10")
    assert m1["operating_status"] == "NO_MONITOR"
    m2 = add_member(api, lb, pool, "192.0.2.11")["id"]
    with api.service.engine.begin() as conn:  # as if health checks had failed
        conn.execute(update(t.member).where(t.member.c.id == m2)
                     .values(operating_status="ERROR"))
    hm = make(api, lb, pool)
    assert status_of(api, t.member, m1["id"], "operating_status") == "OFFLINE"
    assert status_of(api, t.member, m2, "operating_status") == "ERROR"
    m3 = add_member(api, lb, pool, "192.0.2.12")
    assert m3["operating_status"] == "OFFLINE"
    assert api.get(f"{POOLS}/{pool}")[1]["pool"]["healthmonitor_id"] == hm["id"]
    assert api.delete(f"{HMS}/{hm['id']}")[0] == 204
    api.wait_lb(lb["id"])
    assert status_of(api, t.member, m1["id"], "operating_status") == "NO_MONITOR"
    assert status_of(api, t.member, m3["id"], "operating_status") == "NO_MONITOR"
    assert status_of(api, t.member, m2, "operating_status") == "ERROR"
    assert "healthmonitor_id" not in api.get(f"{POOLS}/{pool}")[1]["pool"]


# update -----------------------------------------------------------------------------------------
def test_update_values_and_null_resets(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool, http_method="POST", url_path="/a", expected_codes="201",
              max_retries_down=7)
    code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {
        "name": "renamed", "delay": 9, "timeout": 8, "max_retries": 4, "tags": ["t"],
        "http_method": None, "url_path": None, "expected_codes": None,
        "max_retries_down": None}})
    assert code == 200, body
    new = body["healthmonitor"]
    assert new["provisioning_status"] == "PENDING_UPDATE"
    assert (new["name"], new["delay"], new["timeout"], new["max_retries"]) == (
        "renamed", 9, 8, 4)
    assert (new["http_method"], new["url_path"], new["expected_codes"]) == ("GET", "/", "200")
    assert new["max_retries_down"] == 3 and new["tags"] == ["t"]
    assert new["updated_at"] is not None
    api.wait_lb(lb["id"])
    code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {"admin_state_up": False}})
    assert code == 200
    api.wait_lb(lb["id"])
    view = api.get(f"{HMS}/{hm['id']}")[1]["healthmonitor"]
    assert view["admin_state_up"] is False and view["operating_status"] == "OFFLINE"


@pytest.mark.parametrize(("fields", "message"), [
    ({"delay": None}, "None is not a valid option for delay"),
    ({"timeout": None}, "None is not a valid option for timeout"),
    ({"max_retries": None}, "None is not a valid option for max_retries"),
    ({"url_path": "/x"}, "url_path is not a valid option for health monitors of type TCP"),
    ({"http_method": None}, "http_method is not a valid option for health monitors of type TCP"),
    ({"domain_name": "example.com"}, "Validation failure: 'http_version' must be specified "
                                     "when 'domain_name' is provided."),
])
def test_update_rejections(env, fields, message):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool, type="TCP")
    assert fault(api.put(f"{HMS}/{hm['id']}", {"healthmonitor": fields})) == (400, message)


def test_update_immutable_fields_and_domain(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool, http_version=1.0)
    for key, value in (("type", "TCP"), ("pool_id", pool)):
        code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {key: value}})
        assert code == 400 and "Unknown attribute" in body["faultstring"]
    code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {"domain_name": "a.example"}})
    assert code == 400 and "HTTP 1.1 domain name health check" in body["faultstring"]
    code, body = api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {
        "domain_name": "a.example", "http_version": 1.1}})
    assert code == 200, body
    assert body["healthmonitor"]["domain_name"] == "a.example"
    assert body["healthmonitor"]["http_version"] == 1.1


# delete / show / list ---------------------------------------------------------------------------
def test_delete_then_404(env):
    api, lb, pool = env["api"], env["lb"], env["pool"]
    hm = make(api, lb, pool)
    with paused(api):
        assert api.delete(f"{HMS}/{hm['id']}") == (204, None)
        assert api.get(f"{HMS}/{hm['id']}")[1]["healthmonitor"]["provisioning_status"] == \
            "PENDING_DELETE"
        assert status_of(api, t.pool, pool) == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    assert fault(api.get(f"{HMS}/{hm['id']}")) == (404, f"Health Monitor {hm['id']} not found.")
    assert api.delete(f"{HMS}/{hm['id']}")[0] == 404
    assert api.put(f"{HMS}/{hm['id']}", {"healthmonitor": {"name": "x"}})[0] == 404
    # the pool can take a new monitor again
    make(api, lb, pool)


def test_list_filters_pagination_fields(env):
    api, lb = env["api"], env["lb"]
    ids = []
    for hm_type in ("HTTP", "TCP", "HTTP"):
        ids.append(make(api, lb, add_pool(api, lb), type=hm_type, tags=[hm_type.lower()])["id"])
    code, body = api.get(HMS)
    assert code == 200 and [h["id"] for h in body["healthmonitors"]] == ids
    assert "healthmonitors_links" in body
    code, body = api.get(f"{HMS}?type=HTTP")
    assert [h["id"] for h in body["healthmonitors"]] == [ids[0], ids[2]]
    code, body = api.get(f"{HMS}?tags=tcp")
    assert [h["id"] for h in body["healthmonitors"]] == [ids[1]]
    code, body = api.get(f"{HMS}?limit=2")
    assert [h["id"] for h in body["healthmonitors"]] == ids[:2]
    assert [link["rel"] for link in body["healthmonitors_links"]] == ["next"]
    code, body = api.get(f"{HMS}?limit=2&marker={ids[1]}")
    assert [h["id"] for h in body["healthmonitors"]] == ids[2:]
    code, body = api.get(f"{HMS}?sort=type:desc,created_at:asc&fields=id&fields=type")
    assert body["healthmonitors"] == [{"id": ids[1], "type": "TCP"},
                                      {"id": ids[0], "type": "HTTP"},
                                      {"id": ids[2], "type": "HTTP"}]
    assert api.get(f"{HMS}?nosuch=1")[0] == 400
    code, body = api.get(f"{HMS}/{ids[0]}?fields=pools")
    assert body == {"healthmonitor": {"pools": [{"id": body["healthmonitor"]["pools"][0]["id"]}]}}
