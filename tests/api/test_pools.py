"""Pool endpoints as clients see them: validation, locking, rendering, listing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from lbaas.api.policy import RequestContext
from lbaas.settings import SUITE_B_CIPHERS
from lbaas.store import tables as t
from tls_material import seal_secret, universal

POOLS = "/v2/lbaas/pools"
LISTENERS = "/v2/lbaas/listeners"

POOL_KEYS = {
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "protocol", "lb_algorithm", "session_persistence", "project_id", "tenant_id",
    "loadbalancers", "listeners", "created_at", "updated_at", "healthmonitor_id", "members",
    "tags", "tls_container_ref", "ca_tls_container_ref", "crl_container_ref", "tls_enabled",
    "tls_ciphers", "tls_versions", "alpn_protocols",
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
        project = conn.execute(select(t.load_balancer.c.project_id).where(
            t.load_balancer.c.id == lb_id)).scalar_one()
        conn.execute(t.listener.insert().values(
            id=listener_id, project_id=project, load_balancer_id=lb_id,
            provisioning_status="ACTIVE", operating_status="OFFLINE", admin_state_up=True,
            protocol=protocol, protocol_port=port, connection_limit=-1,
            created_at=t_now()))
    return listener_id


def make_l7policy(api: Any, lb_id: str, listener_id: str, pool_id: str) -> str:
    """A REDIRECT_TO_POOL policy through the API when it exists, else a row written directly."""
    code, body = api.post("/v2/lbaas/l7policies", {"l7policy": {
        "listener_id": listener_id, "action": "REDIRECT_TO_POOL", "redirect_pool_id": pool_id}})
    if code == 201:
        api.wait_lb(lb_id)
        return body["l7policy"]["id"]
    assert code in (404, 405), body
    policy_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.l7policy.insert().values(
            id=policy_id, project_id="admin", listener_id=listener_id,
            provisioning_status="ACTIVE", operating_status="ONLINE", admin_state_up=True,
            action="REDIRECT_TO_POOL", redirect_pool_id=pool_id, position=1,
            created_at=t_now()))
    return policy_id


def make_secret(api: Any, project: str = "admin") -> str:
    secret_id = seal_secret(api.service, project, universal())
    return f"http://barbican.example/v1/secrets/{secret_id}"


def t_now() -> Any:
    from lbaas.api.common import utcnow

    return utcnow()


def set_status(api: Any, table: Any, ident: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == ident)
                     .values(provisioning_status=status))


def row(api: Any, table: Any, ident: str) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.id == ident)).first()


def create_pool(api: Any, lb_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **fields}
    if lb_id:
        body["loadbalancer_id"] = lb_id
    code, data = api.post(POOLS, {"pool": body})
    assert code == 201, data
    lb = data["pool"]["loadbalancers"][0]["id"]
    api.wait_lb(lb)
    return data["pool"]


def wait_gone(api: Any, path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while api.get(path)[0] != 404:
        assert time.monotonic() < deadline, f"{path} still there"
        time.sleep(0.01)


@pytest.fixture()
def frozen(service_factory: Any) -> Any:
    """A service whose reconciler never runs: PENDING_* statuses stay visible."""
    api = service_factory(controller={"resync_interval": 3600})
    return api


def freeze(api: Any) -> None:
    api.service.app.state.notify = lambda _lb_id: None


def enforce_quotas(api: Any, project: str = "admin") -> None:
    """Quotas are off under noauth; authenticate as a (non-noauth) admin instead."""
    class Admin:
        async def authenticate(self, req: Any) -> RequestContext:
            return RequestContext(project_id=project, roles=frozenset({"admin"}),
                                  is_admin=True, noauth=False)

    api.service.app.authenticator = Admin()


def fault(body: Any) -> str:
    return body["faultstring"]


# -- create ------------------------------------------------------------------------------------

def test_create_on_load_balancer_renders_upstream_shape(api):
    lb = api.create_lb()
    code, body = api.post(POOLS, {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "name": "web", "tags": ["b", "a"]}})
    assert code == 201, body
    pool = body["pool"]
    assert set(pool) == POOL_KEYS - {"healthmonitor_id"}  # unset upstream: no key at all
    assert pool["provisioning_status"] == "PENDING_CREATE"
    assert pool["operating_status"] == "OFFLINE"
    assert pool["loadbalancers"] == [{"id": lb["id"]}]
    assert pool["listeners"] == [] and pool["members"] == []
    assert pool["session_persistence"] is None
    assert pool["tenant_id"] == pool["project_id"] == lb["project_id"]
    assert pool["description"] == "" and pool["admin_state_up"] is True
    assert pool["tags"] == ["a", "b"]
    assert pool["tls_enabled"] is False
    assert pool["tls_ciphers"] is None and pool["tls_versions"] is None
    assert pool["alpn_protocols"] is None and pool["updated_at"] is None
    api.wait_lb(lb["id"])
    code, body = api.get(f"{POOLS}/{pool['id']}")
    assert code == 200 and body["pool"]["provisioning_status"] == "ACTIVE"
    code, body = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert body["loadbalancer"]["pools"] == [{"id": pool["id"]}]


def test_create_needs_lb_or_listener_and_mandatory_fields(api):
    code, body = api.post(POOLS, {"pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 400
    assert fault(body) == ("Validation failure: Must provide at least one of: "
                           "loadbalancer_id, listener_id")
    lb = api.create_lb()
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP"}})
    assert code == 400 and "lb_algorithm" in fault(body)
    assert "Mandatory field missing." in fault(body)
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "FTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 400 and "Value should be one of" in fault(body)
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN", "members": []}})
    assert code == 400 and "Unknown attribute" in fault(body)


def test_create_on_unknown_parents_is_404(api):
    missing = str(uuid.uuid4())
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": missing, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 404 and fault(body) == f"Load Balancer {missing} not found."
    code, body = api.post(POOLS, {"pool": {"listener_id": missing, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 404 and fault(body) == f"Listener {missing} not found."


def test_create_with_listener_becomes_default_pool(api):
    lb = api.create_lb()
    listener_id = make_listener(api, lb["id"])
    code, body = api.post(POOLS, {"pool": {"listener_id": listener_id, "protocol": "HTTP",
                                           "lb_algorithm": "LEAST_CONNECTIONS"}})
    assert code == 201, body
    pool = body["pool"]
    assert pool["listeners"] == [{"id": listener_id}]
    assert pool["loadbalancers"] == [{"id": lb["id"]}]
    assert row(api, t.listener, listener_id).default_pool_id == pool["id"]
    api.wait_lb(lb["id"])
    assert row(api, t.listener, listener_id).provisioning_status == "ACTIVE"
    code, body = api.post(POOLS, {"pool": {"listener_id": listener_id, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 409 and fault(body) == "This listener already has a default pool"
    code, body = api.get(POOLS)
    assert len(body["pools"]) == 1


def test_listener_protocol_compatibility_also_with_both_ids(api):
    lb = api.create_lb()
    http = make_listener(api, lb["id"], "HTTP", 80)
    udp = make_listener(api, lb["id"], "UDP", 53)
    for ids in ({"listener_id": http}, {"listener_id": http, "loadbalancer_id": lb["id"]}):
        code, body = api.post(POOLS, {"pool": {**ids, "protocol": "TCP",
                                               "lb_algorithm": "ROUND_ROBIN"}})
        assert code == 400
        assert fault(body) == ("Validation failure: The pool protocol 'TCP' is invalid while "
                               "the listener protocol is 'HTTP'.")
    code, body = api.post(POOLS, {"pool": {"listener_id": udp, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 400 and "listener protocol is 'UDP'" in fault(body)
    code, body = api.post(POOLS, {"pool": {"listener_id": udp, "loadbalancer_id": lb["id"],
                                           "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201, body
    prometheus = make_listener(api, lb["id"], "PROMETHEUS", 9100)
    code, body = api.post(POOLS, {"pool": {"listener_id": prometheus, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 400
    assert fault(body) == "Protocol PROMETHEUS listeners cannot have child objects."


def test_listener_must_belong_to_the_given_lb(api):
    lb1, lb2 = api.create_lb(), api.create_lb()
    listener = make_listener(api, lb1["id"])
    code, body = api.post(POOLS, {"pool": {"listener_id": listener, "loadbalancer_id":
                                           lb2["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 400 and "does not belong to load balancer" in fault(body)
    assert row(api, t.listener, listener).default_pool_id is None


def test_source_ip_port_is_accepted_by_amphora_and_noop(api):
    """Beyond upstream (whose amphora driver answers 501): the data plane renders it."""
    lb = api.create_lb()
    pool = create_pool(api, lb["id"], protocol="TCP", lb_algorithm="SOURCE_IP_PORT")
    assert pool["lb_algorithm"] == "SOURCE_IP_PORT"
    other = create_pool(api, lb["id"])
    code, body = api.put(f"{POOLS}/{other['id']}", {"pool": {"lb_algorithm": "SOURCE_IP_PORT"}})
    assert code == 200 and body["pool"]["lb_algorithm"] == "SOURCE_IP_PORT"
    noop = api.create_lb(provider="noop_driver")
    create_pool(api, noop["id"], protocol="TCP", lb_algorithm="SOURCE_IP_PORT")


@pytest.mark.parametrize(("protocol", "sp", "message"), [
    ("HTTP", {"type": "APP_COOKIE"}, 'Field "cookie_name" must be specified when using the '
     '"APP_COOKIE" session persistence type.'),
    ("HTTP", {"type": "HTTP_COOKIE", "cookie_name": "c"}, 'Field "cookie_name" can only be '
     'specified with session persistence of type "APP_COOKIE".'),
    ("HTTP", {"type": "APP_COOKIE", "cookie_name": "bad name"},
     'Supplied "cookie_name" is invalid.'),
    ("HTTP", {"type": "APP_COOKIE", "cookie_name": "a;b"}, 'Supplied "cookie_name" is invalid.'),
    ("TCP", {"type": "SOURCE_IP", "persistence_timeout": 10},
     "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol "
     "pools."),
    ("HTTP", {"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"},
     "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol "
     "pools."),
    ("UDP", {"type": "HTTP_COOKIE"}, "Session persistence of type HTTP_COOKIE is not "
     "supported for UDP/SCTP protocol pools."),
    ("SCTP", {"type": "APP_COOKIE", "cookie_name": "c"},
     "Cookie names are not supported for UDP/SCTP pools."),
    ("UDP", {"type": "SOURCE_IP", "cookie_name": "c"}, "session_persistence SOURCE_IP type for "
     "UDP and SCTP protocols only accepts: type, persistence_timeout, "
     "persistence_granularity."),
])
def test_session_persistence_rules(api, protocol, sp, message):
    lb = api.create_lb()
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": protocol,
                                           "lb_algorithm": "ROUND_ROBIN",
                                           "session_persistence": sp}})
    assert code == 400
    assert fault(body) == f"Validation failure: {message}"


def test_session_persistence_accepted_forms(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"], protocol="UDP", session_persistence={
        "type": "SOURCE_IP", "persistence_timeout": 60,
        "persistence_granularity": "255.255.255.0"})
    assert pool["session_persistence"] == {
        "type": "SOURCE_IP", "cookie_name": None, "persistence_timeout": 60,
        "persistence_granularity": "255.255.255.0"}
    pool = create_pool(api, lb["id"], session_persistence={"type": "APP_COOKIE",
                                                           "cookie_name": "JSESSIONID"})
    assert pool["session_persistence"]["cookie_name"] == "JSESSIONID"
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN",
                                           "session_persistence": {"cookie_name": "x"}}})
    assert code == 400 and "Mandatory field missing." in fault(body)


def test_tls_defaults_only_when_enabled(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"], protocol="HTTPS", tls_enabled=True)
    assert pool["tls_enabled"] is True
    assert pool["tls_ciphers"] == SUITE_B_CIPHERS
    assert pool["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert pool["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    pool = create_pool(api, lb["id"], tls_enabled=True, tls_versions=["TLSv1.3"],
                       alpn_protocols=["h2"], tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    assert pool["tls_versions"] == ["TLSv1.3"] and pool["alpn_protocols"] == ["h2"]
    assert pool["tls_ciphers"] == "ECDHE-RSA-AES128-GCM-SHA256"


@pytest.mark.parametrize(("fields", "message"), [
    ({"tls_enabled": True, "tls_versions": ["TLSv9"]}, "Invalid TLS versions: TLSv9"),
    ({"tls_enabled": True, "tls_versions": []}, "Empty TLS version list. Either specify at "
     "least one TLS version or remove this parameter to use the default."),
    ({"tls_enabled": True, "alpn_protocols": ["spdy"]}, "Invalid ALPN protocol: spdy"),
    ({"tls_enabled": True, "alpn_protocols": []}, "Empty ALPN protocol list. Either specify "
     "at least one ALPN protocol or remove this parameter to use the default."),
    ({"crl_container_ref": "http://x/v1/secrets/crl"}, "A CA certificate reference is "
     "required to specify a revocation list."),
])
def test_tls_validation(api, fields, message):
    lb = api.create_lb()
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN", **fields}})
    assert code == 400
    assert fault(body) == f"Validation failure: {message}"


def test_certificate_refs_must_resolve(api):
    lb = api.create_lb()
    cert, ca, crl = make_secret(api), make_secret(api), make_secret(api)
    bad = "http://barbican.example/v1/secrets/" + str(uuid.uuid4())
    foreign = make_secret(api, project="someone-else")
    for fields, missing in (({"tls_container_ref": bad}, [bad]),
                            ({"tls_container_ref": foreign}, [foreign]),
                            ({"ca_tls_container_ref": bad, "crl_container_ref": crl}, [bad]),
                            ({"ca_tls_container_ref": ca, "crl_container_ref": bad}, [bad])):
        code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                               "lb_algorithm": "ROUND_ROBIN", **fields}})
        assert code == 400
        assert fault(body) == f"Could not retrieve certificate: {missing!r}"
    pool = create_pool(api, lb["id"], tls_enabled=True, tls_container_ref=cert,
                       ca_tls_container_ref=ca, crl_container_ref=crl)
    assert (pool["tls_container_ref"], pool["ca_tls_container_ref"],
            pool["crl_container_ref"]) == (cert, ca, crl)


def test_prohibited_ciphers_and_minimum_tls_version(service_factory):
    api = service_factory(api={"tls_cipher_prohibit_list": ["RC4-MD5", "DES-CBC3-SHA"],
                               "minimum_tls_version": "TLSv1.2"})
    lb = api.create_lb()
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN",
                                           "tls_ciphers": "AES128-SHA:RC4-MD5:DES-CBC3-SHA"}})
    assert code == 400
    assert fault(body) == ("Validation failure: The following ciphers have been prohibited by "
                           "an administrator: RC4-MD5, DES-CBC3-SHA")
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                                           "tls_versions": ["TLSv1.1", "TLSv1.3"]}})
    assert code == 400
    assert fault(body) == ("Validation failure: Requested TLS versions are less than the "
                           "minimum: TLSv1.1 < TLSv1.2")


def test_quota(api):
    enforce_quotas(api)
    lb = api.create_lb()
    with api.service.engine.begin() as conn:
        conn.execute(t.quota.insert().values(project_id=lb["project_id"], pool=1))
    create_pool(api, lb["id"])
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 403 and fault(body) == "Quota has been met for resources: Pool"


# -- locking -----------------------------------------------------------------------------------

def test_create_locks_lb_and_listener(frozen):
    api = frozen
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    freeze(api)
    code, body = api.post(POOLS, {"pool": {"listener_id": listener, "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 201
    assert row(api, t.load_balancer, lb["id"]).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.listener, listener).provisioning_status == "PENDING_UPDATE"
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert code == 409
    assert fault(body) == f"Load Balancer {lb['id']} is immutable and cannot be updated."


def test_changes_need_an_active_lb(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"])
    set_status(api, t.load_balancer, lb["id"], "ERROR")
    immutable = f"Load Balancer {lb['id']} is immutable and cannot be updated."
    code, body = api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                           "lb_algorithm": "ROUND_ROBIN"}})
    assert (code, fault(body)) == (409, immutable)
    code, body = api.put(f"{POOLS}/{pool['id']}", {"pool": {"name": "x"}})
    assert (code, fault(body)) == (409, immutable)
    code, body = api.delete(f"{POOLS}/{pool['id']}")
    assert (code, fault(body)) == (409, immutable)
    assert row(api, t.pool, pool["id"]).name is None


# -- update ------------------------------------------------------------------------------------

def test_update_fields_and_statuses(frozen):
    api = frozen
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    pool = create_pool(api, listener_id=listener, session_persistence={
        "type": "APP_COOKIE", "cookie_name": "a"}, tags=["x"])
    freeze(api)
    code, body = api.put(f"{POOLS}/{pool['id']}", {"pool": {
        "name": "new", "description": "d", "lb_algorithm": "SOURCE_IP",
        "admin_state_up": False, "tags": ["y", "z"], "session_persistence": {
            "cookie_name": "b"}}})
    assert code == 200, body
    view = body["pool"]
    assert view["provisioning_status"] == "PENDING_UPDATE"
    assert (view["name"], view["description"], view["lb_algorithm"]) == ("new", "d",
                                                                         "SOURCE_IP")
    assert view["admin_state_up"] is False and view["tags"] == ["y", "z"]
    assert view["session_persistence"]["type"] == "APP_COOKIE"
    assert view["session_persistence"]["cookie_name"] == "b"
    assert view["updated_at"] is not None
    assert row(api, t.listener, listener).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.load_balancer, lb["id"]).provisioning_status == "PENDING_UPDATE"


def test_update_session_persistence_null_and_type_change(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"], session_persistence={"type": "APP_COOKIE",
                                                           "cookie_name": "a"})
    path = f"{POOLS}/{pool['id']}"
    code, body = api.put(path, {"pool": {"session_persistence": {"type": "HTTP_COOKIE"}}})
    assert code == 200, body
    assert body["pool"]["session_persistence"] == {
        "type": "HTTP_COOKIE", "cookie_name": None, "persistence_timeout": None,
        "persistence_granularity": None}
    api.wait_lb(lb["id"])
    code, body = api.put(path, {"pool": {"session_persistence": {"type": "APP_COOKIE"}}})
    assert code == 400 and "must be specified" in fault(body)
    code, body = api.put(path, {"pool": {"session_persistence": None}})
    assert code == 200 and body["pool"]["session_persistence"] is None
    api.wait_lb(lb["id"])
    code, body = api.put(path, {"pool": {"session_persistence": {"cookie_name": "x"}}})
    assert code == 400
    assert fault(body) == "Validation failure: Invalid session_persistence provided."
    code, body = api.put(path, {"pool": {"session_persistence": {
        "type": "SOURCE_IP", "persistence_timeout": 5}}})
    assert code == 400 and "only for UDP and SCTP" in fault(body)


def test_update_rejects_immutable_fields_and_bad_values(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"])
    path = f"{POOLS}/{pool['id']}"
    for fields in ({"protocol": "TCP"}, {"loadbalancer_id": lb["id"]}, {"lb_algorithm": None},
                   {"lb_algorithm": "RANDOM"}):
        code, body = api.put(path, {"pool": fields})
        assert code == 400, fields
    code, body = api.put(f"{POOLS}/{uuid.uuid4()}", {"pool": {"name": "x"}})
    assert code == 404 and fault(body).startswith("Pool ")


def test_update_tls_resets_and_ca_crl_rules(api):
    lb = api.create_lb()
    ca, crl = make_secret(api), make_secret(api)
    pool = create_pool(api, lb["id"], tls_enabled=True, tls_versions=["TLSv1.3"],
                       tls_ciphers="AES128-SHA", ca_tls_container_ref=ca,
                       crl_container_ref=crl)
    path = f"{POOLS}/{pool['id']}"
    code, body = api.put(path, {"pool": {"ca_tls_container_ref": None}})
    assert code == 400
    assert fault(body) == ("Validation failure: A CA reference cannot be removed when a "
                           "certificate revocation list is present.")
    code, body = api.put(path, {"pool": {"tls_versions": None, "tls_ciphers": None,
                                         "alpn_protocols": None}})
    assert code == 200, body
    assert body["pool"]["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert body["pool"]["tls_ciphers"] == SUITE_B_CIPHERS
    assert body["pool"]["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    api.wait_lb(lb["id"])
    code, body = api.put(path, {"pool": {"crl_container_ref": None,
                                         "ca_tls_container_ref": None}})
    assert code == 200 and body["pool"]["ca_tls_container_ref"] is None
    api.wait_lb(lb["id"])
    code, body = api.put(path, {"pool": {"crl_container_ref": crl}})
    assert code == 400
    assert fault(body) == ("Validation failure: A CA reference is required to specify a "
                           "certificate revocation list.")
    code, body = api.put(path, {"pool": {"tls_container_ref": "http://x/v1/secrets/nope"}})
    assert code == 400
    assert fault(body) == "Could not retrieve certificate: ['http://x/v1/secrets/nope']"


def test_update_enabling_tls_fills_defaults(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"])
    code, body = api.put(f"{POOLS}/{pool['id']}", {"pool": {"tls_enabled": True}})
    assert code == 200
    assert body["pool"]["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert body["pool"]["tls_ciphers"] == SUITE_B_CIPHERS


# -- delete ------------------------------------------------------------------------------------

def test_delete_removes_pool_and_members_and_detaches_listener(api):
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    pool = create_pool(api, listener_id=listener)
    code, _ = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 80}})
    assert code == 201
    api.wait_lb(lb["id"])
    code, body = api.delete(f"{POOLS}/{pool['id']}")
    assert code == 204 and body is None
    api.wait_lb(lb["id"])
    code, body = api.get(f"{POOLS}/{pool['id']}")
    assert code == 404 and fault(body) == f"Pool {pool['id']} not found."
    with api.service.engine.connect() as conn:
        assert conn.execute(select(t.member)).first() is None
    assert row(api, t.listener, listener).default_pool_id is None
    code, body = api.delete(f"{POOLS}/{pool['id']}")
    assert code == 404


def test_delete_marks_pending_and_locks_listeners(frozen):
    api = frozen
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    pool = create_pool(api, listener_id=listener)
    freeze(api)
    code, _ = api.delete(f"{POOLS}/{pool['id']}")
    assert code == 204
    assert row(api, t.pool, pool["id"]).provisioning_status == "PENDING_DELETE"
    assert row(api, t.listener, listener).provisioning_status == "PENDING_UPDATE"
    assert row(api, t.load_balancer, lb["id"]).provisioning_status == "PENDING_UPDATE"


def test_l7_redirect_lists_listener_and_blocks_delete(api):
    lb = api.create_lb()
    listener = make_listener(api, lb["id"])
    pool = create_pool(api, lb["id"])
    policy = make_l7policy(api, lb["id"], listener, pool["id"])
    code, body = api.get(f"{POOLS}/{pool['id']}")
    assert body["pool"]["listeners"] == [{"id": listener}]
    code, body = api.delete(f"{POOLS}/{pool['id']}")
    assert code == 409
    assert fault(body) == f"Pool {pool['id']} is in use by L7 policy {policy}"


def test_response_lists_health_monitor_and_members(api):
    lb = api.create_lb()
    pool = create_pool(api, lb["id"])
    code, hm = api.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}})
    assert code == 201, hm
    hm_id = hm["healthmonitor"]["id"]
    api.wait_lb(lb["id"])
    code, member = api.post(f"{POOLS}/{pool['id']}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 80}})
    assert code == 201
    code, body = api.get(f"{POOLS}/{pool['id']}?fields=healthmonitor_id,members")
    assert body == {"pool": {"healthmonitor_id": hm_id,
                             "members": [{"id": member["member"]["id"]}]}}


# -- list --------------------------------------------------------------------------------------

def test_list_filters_pagination_fields_and_tags(api):
    lb1, lb2 = api.create_lb(), api.create_lb()
    ids = [create_pool(api, lb1["id"], name=f"p{i}", tags=["even" if i % 2 == 0 else "odd"],
                       protocol="TCP" if i == 3 else "HTTP")["id"] for i in range(4)]
    other = create_pool(api, lb2["id"], name="other")["id"]
    code, body = api.get(POOLS)
    assert code == 200 and [p["id"] for p in body["pools"]] == [*ids, other]
    code, body = api.get(f"{POOLS}?loadbalancer_id={lb2['id']}")
    assert [p["id"] for p in body["pools"]] == [other]
    code, body = api.get(f"{POOLS}?protocol=TCP")
    assert [p["id"] for p in body["pools"]] == [ids[3]]
    code, body = api.get(f"{POOLS}?name=p1&admin_state_up=true")
    assert [p["id"] for p in body["pools"]] == [ids[1]]
    code, body = api.get(f"{POOLS}?tags=even")
    assert [p["id"] for p in body["pools"]] == [ids[0], ids[2]]
    code, body = api.get(f"{POOLS}?not-tags-any=even,odd")
    assert [p["id"] for p in body["pools"]] == [other]
    code, body = api.get(f"{POOLS}?limit=2")
    assert [p["id"] for p in body["pools"]] == ids[:2]
    assert [link["rel"] for link in body["pools_links"]] == ["next"]
    code, body = api.get(f"{POOLS}?limit=2&marker={ids[1]}")
    assert [p["id"] for p in body["pools"]] == ids[2:]
    assert {link["rel"] for link in body["pools_links"]} == {"next", "previous"}
    code, body = api.get(f"{POOLS}?sort=name:desc&fields=name&fields=protocol")
    assert body["pools"] == [{"name": n, "protocol": p} for n, p in (
        ("p3", "TCP"), ("p2", "HTTP"), ("p1", "HTTP"), ("p0", "HTTP"), ("other", "HTTP"))]
    code, body = api.get(f"{POOLS}?bogus=1")
    assert code == 400
    assert fault(body) == "One or more arguments are either duplicate or invalid"
    code, body = api.get(f"{POOLS}/{ids[0]}?fields=id,name")
    assert body == {"pool": {"id": ids[0], "name": "p0"}}


def test_v2_0_prefix_and_unknown_pool(api):
    missing = str(uuid.uuid4())
    code, body = api.get(f"/v2.0/lbaas/pools/{missing}")
    assert code == 404 and fault(body) == f"Pool {missing} not found."
    code, body = api.get("/v2.0/lbaas/pools")
    assert code == 200 and body == {"pools": [], "pools_links": []}
