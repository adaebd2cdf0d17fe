"""Listener endpoints as clients see them: fields, defaults, validation, locking, lists, stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from lbaas.settings import SUITE_B_CIPHERS
from lbaas.store import tables as t
from tls_material import seal_secret, universal

LBS = "/v2/lbaas/loadbalancers"
LISTENERS = "/v2/lbaas/listeners"

RESPONSE_KEYS = {
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "protocol", "protocol_port", "connection_limit", "default_tls_container_ref",
    "sni_container_refs", "project_id", "tenant_id", "default_pool_id", "l7policies",
    "insert_headers", "created_at", "updated_at", "loadbalancers", "timeout_client_data",
    "timeout_member_connect", "timeout_member_data", "timeout_tcp_inspect", "tags",
    "client_ca_tls_container_ref", "client_authentication", "client_crl_container_ref",
    "allowed_cidrs", "tls_ciphers", "tls_versions", "alpn_protocols", "hsts_max_age",
    "hsts_include_subdomains", "hsts_preload",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def add_pool(api: Any, lb: dict[str, Any], protocol: str = "HTTP") -> str:
    """A pool row straight in the database (the pool API is not under test here)."""
    pool_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(t.pool.insert().values(
            id=pool_id, project_id=lb["project_id"], load_balancer_id=lb["id"],
            provisioning_status="ACTIVE", operating_status="ONLINE", admin_state_up=True,
            protocol=protocol, lb_algorithm="ROUND_ROBIN", created_at=_now()))
    return pool_id


def add_secret(api: Any, project_id: str) -> str:
    secret_id = seal_secret(api.service, project_id, universal())
    return f"https://keymanager.example/v1/secrets/{secret_id}"


def post(api: Any, lb: dict[str, Any], **fields: Any) -> tuple[int, Any]:
    return api.post(LISTENERS, {"listener": {"loadbalancer_id": lb["id"], **fields}})


def make(api: Any, lb: dict[str, Any], protocol: str = "HTTP", port: int = 80,
         **fields: Any) -> dict[str, Any]:
    code, body = post(api, lb, **{"protocol": protocol, "protocol_port": port, **fields})
    assert code == 201, body
    api.wait_lb(lb["id"])
    return body["listener"]


def fault(api: Any, lb: dict[str, Any], status: int, **fields: Any) -> str:
    code, body = post(api, lb, **fields)
    assert code == status, body
    return body["faultstring"]


def tls_https(api: Any, lb: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": "TERMINATED_HTTPS", "protocol_port": 443,
            "default_tls_container_ref": add_secret(api, lb["project_id"])}


# create ---------------------------------------------------------------------------------------
def test_create_defaults_then_active(api):
    lb = api.create_lb()
    code, body = post(api, lb, protocol="HTTP", protocol_port=80)
    assert code == 201, body
    li = body["listener"]
    assert set(li) == RESPONSE_KEYS
    assert li["provisioning_status"] == "PENDING_CREATE"
    assert li["operating_status"] == "OFFLINE"
    assert li["name"] == "" and li["description"] == ""
    assert li["admin_state_up"] is True
    assert li["connection_limit"] == -1
    assert (li["timeout_client_data"], li["timeout_member_connect"], li["timeout_member_data"],
            li["timeout_tcp_inspect"]) == (50000, 5000, 50000, 0)
    assert li["insert_headers"] == {} and li["allowed_cidrs"] is None
    assert li["sni_container_refs"] == [] and li["default_tls_container_ref"] is None
    assert li["client_authentication"] == "NONE"
    assert li["tls_ciphers"] is None and li["tls_versions"] is None
    assert li["alpn_protocols"] is None
    assert li["hsts_max_age"] is None and li["hsts_include_subdomains"] is False
    assert li["hsts_preload"] is False
    assert li["loadbalancers"] == [{"id": lb["id"]}] and li["l7policies"] == []
    assert li["project_id"] == li["tenant_id"] == lb["project_id"]
    assert li["updated_at"] is None and li["tags"] == []
    code, lbody = api.get(f"{LBS}/{lb['id']}")
    assert lbody["loadbalancer"]["listeners"] == [{"id": li["id"]}]
    api.wait_lb(lb["id"])
    code, body = api.get(f"{LISTENERS}/{li['id']}")
    assert code == 200 and body["listener"]["provisioning_status"] == "ACTIVE"


def test_create_with_every_plain_field(api):
    lb = api.create_lb()
    li = make(api, lb, "HTTP", 8080, name="web", description="d", admin_state_up=False,
              connection_limit=100, timeout_client_data=1, timeout_member_connect=2,
              timeout_member_data=3, timeout_tcp_inspect=4, tags=["b", "a"],
              insert_headers={"X-Forwarded-For": "true", "X-Forwarded-Port": "false"},
              allowed_cidrs=["10.1.2.3/8", "10.0.0.0/8", "192.0.2.0/24"],
              project_id="ignored")
    assert li["name"] == "web" and li["admin_state_up"] is False
    assert li["connection_limit"] == 100
    assert [li[k] for k in ("timeout_client_data", "timeout_member_connect",
                            "timeout_member_data", "timeout_tcp_inspect")] == [1, 2, 3, 4]
    assert sorted(li["tags"]) == ["a", "b"]
    assert li["insert_headers"] == {"X-Forwarded-For": "true", "X-Forwarded-Port": "false"}
    assert li["allowed_cidrs"] == ["10.0.0.0/8", "192.0.2.0/24"]
    assert li["project_id"] == lb["project_id"]
    code, body = post(api, lb, protocol="TCP", protocol_port=81, allowed_cidrs=[])
    assert code == 201 and body["listener"]["allowed_cidrs"] is None


def test_type_and_range_errors(api):
    lb = api.create_lb()
    cases = [
        ({"protocol_port": 80}, "protocol", "Mandatory field missing."),
        ({"protocol": "HTTP"}, "protocol_port", "Mandatory field missing."),
        ({"protocol": "FTP", "protocol_port": 80}, "protocol", "Value should be one of"),
        ({"protocol": "HTTP", "protocol_port": 0}, "protocol_port", "greater or equal to 1"),
        ({"protocol": "HTTP", "protocol_port": 65536}, "protocol_port", "lower or equal"),
        ({"protocol": "HTTP", "protocol_port": 80, "connection_limit": -2},
         "connection_limit", "greater or equal to -1"),
        ({"protocol": "HTTP", "protocol_port": 80, "timeout_client_data": -1},
         "timeout_client_data", "greater or equal to 0"),
        ({"protocol": "HTTP", "protocol_port": 80, "timeout_member_data": 2073600001},
         "timeout_member_data", "lower or equal to 2073600000"),
        ({"protocol": "HTTP", "protocol_port": 80, "allowed_cidrs": ["nope"]},
         "allowed_cidrs", "CIDR format"),
        ({"protocol": "HTTP", "protocol_port": 80, "hsts_max_age": -1},
         "hsts_max_age", "greater or equal to 0"),
        ({"protocol": "HTTP", "protocol_port": 80, "client_authentication": "SOMETIMES"},
         "client_authentication", "Value should be one of"),
        ({"protocol": "HTTP", "protocol_port": 80, "default_pool_id": "x"},
         "default_pool_id", "UUID format"),
    ]
    for fields, attr, reason in cases:
        msg = fault(api, lb, 400, **fields)
        assert msg.startswith(f"Invalid input for field/attribute {attr}."), (fields, msg)
        assert reason in msg, (fields, msg)
    msg = fault(api, lb, 400, protocol="HTTP", protocol_port=80, bogus=1)
    assert msg == "Unknown attribute for argument listener_.listener: bogus"
    code, body = api.post(LISTENERS, {"listener": {"protocol": "HTTP", "protocol_port": 80}})
    assert code == 400 and "loadbalancer_id" in body["faultstring"]


def test_unknown_load_balancer_is_404(api):
    missing = str(uuid.uuid4())
    code, body = api.post(LISTENERS, {"listener": {
        "loadbalancer_id": missing, "protocol": "HTTP", "protocol_port": 80}})
    assert code == 404
    assert body["faultstring"] == f"Load Balancer {missing} not found."


def test_disabled_protocols(service_factory):
    api = service_factory(api={"allow_tls_terminated_listeners": False,
                               "allow_prometheus_listeners": False})
    lb = api.create_lb()
    assert fault(api, lb, 400, **tls_https(api, lb)) == (
        "The selected protocol is not allowed in this deployment: TERMINATED_HTTPS")
    assert fault(api, lb, 400, protocol="PROMETHEUS", protocol_port=9100) == (
        "The selected protocol is not allowed in this deployment: PROMETHEUS")
    api = service_factory(api={"allow_tls_terminated_listeners": False})
    lb = api.create_lb()
    ref = add_secret(api, lb["project_id"])
    assert fault(api, lb, 400, protocol="PROMETHEUS", protocol_port=9100,
                 default_tls_container_ref=ref) == (
        "The selected protocol is not allowed in this deployment: PROMETHEUS with TLS")
    make(api, lb, "PROMETHEUS", 9100)


def test_port_unique_per_l4_protocol(api):
    lb = api.create_lb()
    make(api, lb, "HTTP", 80)
    for proto in ("TCP", "HTTPS", "PROMETHEUS"):
        assert fault(api, lb, 409, protocol=proto, protocol_port=80) == (
            "Another Listener on this Load Balancer is already using protocol HTTP and "
            "protocol_port 80")
    make(api, lb, "UDP", 80)
    make(api, lb, "SCTP", 80)
    assert "protocol UDP and protocol_port 80" in fault(api, lb, 409, protocol="UDP",
                                                        protocol_port=80)
    other = api.create_lb()
    make(api, other, "TCP", 80)


def set_lb_status(api: Any, lb_id: str, status: str) -> None:
    with api.service.engine.begin() as conn:
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(provisioning_status=status))


def generation(api: Any, lb_id: str) -> int:
    """The load balancer's change counter: every accepted change must bump it."""
    with api.service.engine.connect() as conn:
        return int(conn.execute(select(t.load_balancer.c.generation).where(
            t.load_balancer.c.id == lb_id)).scalar_one())


def test_load_balancer_not_active_is_409(service_factory):
    # No periodic resync, so a status set here stays until the test changes it.
    api = service_factory(controller={"resync_interval": 3600})
    lb = api.create_lb()
    li = make(api, lb, "HTTP", 80)
    immutable = f"Load Balancer {lb['id']} is immutable and cannot be updated."
    for status in ("PENDING_UPDATE", "ERROR"):
        set_lb_status(api, lb["id"], status)
        assert fault(api, lb, 409, protocol="TCP", protocol_port=81) == immutable
        code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": {"name": "x"}})
        assert code == 409 and body["faultstring"] == immutable
        code, body = api.delete(f"{LISTENERS}/{li['id']}")
        assert code == 409 and body["faultstring"] == immutable
    # Validation (400) comes before the lock check (409).
    assert "Mandatory field missing" in fault(api, lb, 400, protocol="TCP")
    set_lb_status(api, lb["id"], "ACTIVE")
    code, body = api.get(f"{LISTENERS}/{li['id']}")
    assert body["listener"]["name"] == "" and body["listener"]["provisioning_status"] == "ACTIVE"
    code, body = api.get(LISTENERS)
    assert len(body["listeners"]) == 1


def test_default_pool_rules(api):
    lb = api.create_lb()
    other = api.create_lb()
    http_pool = add_pool(api, lb, "HTTP")
    udp_pool = add_pool(api, lb, "UDP")
    foreign = add_pool(api, other, "HTTP")
    li = make(api, lb, "HTTP", 80, default_pool_id=http_pool)
    assert li["default_pool_id"] == http_pool
    assert fault(api, lb, 404, protocol="HTTP", protocol_port=81,
                 default_pool_id=foreign) == f"Pool {foreign} not found."
    missing = str(uuid.uuid4())
    assert fault(api, lb, 404, protocol="HTTP", protocol_port=81,
                 default_pool_id=missing) == f"Pool {missing} not found."
    assert fault(api, lb, 400, protocol="TCP", protocol_port=81, default_pool_id=udp_pool) == (
        "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol "
        "is 'TCP'.")
    assert "pool protocol 'HTTP'" in fault(api, lb, 400, protocol="HTTPS", protocol_port=81,
                                           default_pool_id=http_pool)
    assert fault(api, lb, 400, protocol="PROMETHEUS", protocol_port=81,
                 default_pool_id=http_pool) == (
        "Protocol PROMETHEUS listeners cannot have child objects.")
    # A pool may be the default pool of several listeners.
    make(api, lb, "TCP", 82, default_pool_id=http_pool)


def test_insert_headers_rules(api):
    lb = api.create_lb()
    assert fault(api, lb, 400, protocol="TCP", protocol_port=80,
                 insert_headers={"X-Forwarded-For": "true"}) == (
        "insert-headers is not a valid option for a TCP protocol listener.")
    assert fault(api, lb, 400, protocol="UDP", protocol_port=80,
                 insert_headers={"X-Forwarded-For": "true"}) == (
        "insert-headers is not a valid option for a UDP protocol listener.")
    assert fault(api, lb, 400, protocol="HTTP", protocol_port=80,
                 insert_headers={"X-Bogus": "true"}) == (
        "['X-Bogus'] is not a valid option for insert_headers")
    assert fault(api, lb, 400, protocol="HTTP", protocol_port=80,
                 insert_headers={"X-Forwarded-For": "true", "X-SSL-Client-DN": "true"}) == (
        "['X-SSL-Client-DN'] is not a valid option for HTTP protocol listener.")
    assert "must be 'true' or 'false'" in fault(
        api, lb, 400, protocol="HTTP", protocol_port=80, insert_headers={"X-Real-IP": "yes"})
    assert "Values should be strings" in fault(
        api, lb, 400, protocol="HTTP", protocol_port=80, insert_headers={"X-Real-IP": True})
    li = make(api, lb, insert_headers={"X-SSL-Client-CN": "true", "X-Forwarded-Proto": "True"},
              **tls_https(api, lb))
    assert li["insert_headers"] == {"X-SSL-Client-CN": "true", "X-Forwarded-Proto": "True"}


def test_allowed_cidrs_family_must_match_vip(api):
    lb = api.create_lb()
    msg = fault(api, lb, 400, protocol="HTTP", protocol_port=80,
                allowed_cidrs=["10.0.0.0/8", "2001:db8::1/32"])
    assert msg == (f"Validation failure: CIDR 2001:db8::/32 IP version incompatible with all "
                   f"VIPs ['{lb['vip_address']}'] IP version.")


def test_tls_reference_rules(api):
    lb = api.create_lb()
    project = lb["project_id"]
    cert, sni, ca, crl = (add_secret(api, project) for _ in range(4))
    assert fault(api, lb, 400, protocol="HTTP", protocol_port=80,
                 default_tls_container_ref=cert) == (
        "Validation failure: Certificate container references are not allowed on HTTP "
        "protocol listeners.")
    assert fault(api, lb, 400, protocol="UDP", protocol_port=80,
                 sni_container_refs=[sni]) == (
        "Validation failure: UDP protocol listener does not support TLS.")
    assert fault(api, lb, 400, protocol="TERMINATED_HTTPS", protocol_port=443) == (
        "Validation failure: An SNI or default certificate container reference must be "
        "provided for TERMINATED_HTTPS protocol listeners.")
    assert fault(api, lb, 400, protocol="TERMINATED_HTTPS", protocol_port=443,
                 client_ca_tls_container_ref=ca) == (
        "Validation failure: An SNI or default certificate container reference must be "
        "provided with a client CA container reference.")
    assert fault(api, lb, 400, client_authentication="MANDATORY", **tls_https(api, lb)) == (
        "Validation failure: Client authentication setting MANDATORY requires a client CA "
        "container reference.")
    assert fault(api, lb, 400, client_crl_container_ref=crl, **tls_https(api, lb)) == (
        "Validation failure: A client authentication CA reference is required to specify a "
        "client authentication revocation list.")
    missing = f"https://keymanager.example/v1/secrets/{uuid.uuid4()}"
    foreign = add_secret(api, "someone-else")
    assert fault(api, lb, 400, protocol="TERMINATED_HTTPS", protocol_port=443,
                 sni_container_refs=[sni, missing], default_tls_container_ref=foreign) == (
        f"Could not retrieve certificate: ['{missing}', '{foreign}']")
    assert fault(api, lb, 400, client_ca_tls_container_ref=missing,
                 **tls_https(api, lb)) == f"Could not retrieve certificate: ['{missing}']"
    li = make(api, lb, "TERMINATED_HTTPS", 443, default_tls_container_ref=cert,
              sni_container_refs=[sni, sni, cert], client_ca_tls_container_ref=ca,
              client_crl_container_ref=crl, client_authentication="OPTIONAL")
    assert li["sni_container_refs"] == [sni, cert]
    assert li["default_tls_container_ref"] == cert
    assert li["client_authentication"] == "OPTIONAL"
    assert li["tls_ciphers"] == SUITE_B_CIPHERS
    assert li["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert li["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    prom = make(api, lb, "PROMETHEUS", 9100)
    assert prom["tls_ciphers"] is None and prom["tls_versions"] is None
    assert fault(api, lb, 400, protocol="PROMETHEUS", protocol_port=9101,
                 client_crl_container_ref=crl, client_ca_tls_container_ref=ca) == (
        "Validation failure: An SNI or default certificate container reference must be "
        "provided with a client CA container reference.")
    make(api, lb, "PROMETHEUS", 9101, default_tls_container_ref=cert)


def test_tls_parameter_validation(service_factory):
    api = service_factory(api={"tls_cipher_prohibit_list": ["RC4-MD5", "DES-CBC3-SHA"],
                               "minimum_tls_version": "TLSv1.2"})
    lb = api.create_lb()
    msg = fault(api, lb, 400, tls_ciphers="ECDHE RSA", **tls_https(api, lb))
    assert msg.startswith("Invalid input for field/attribute tls_ciphers.")
    assert "pattern" in msg
    assert fault(api, lb, 400, tls_ciphers="RC4-MD5:ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA",
                 **tls_https(api, lb)) == (
        "Validation failure: The following ciphers have been prohibited by an administrator: "
        "RC4-MD5, DES-CBC3-SHA")
    assert fault(api, lb, 400, tls_versions=[], **tls_https(api, lb)) == (
        "Validation failure: Empty TLS version list. Either specify at least one TLS version "
        "or remove this parameter to use the default.")
    assert fault(api, lb, 400, tls_versions=["TLSv9"], **tls_https(api, lb)) == (
        "Validation failure: Invalid TLS versions: TLSv9")
    assert fault(api, lb, 400, tls_versions=["TLSv1.1", "TLSv1.3"], **tls_https(api, lb)) == (
        "Validation failure: Requested TLS versions are less than the minimum: TLSv1.1 < "
        "TLSv1.2")
    assert "Invalid ALPN protocol: h3" in fault(api, lb, 400, alpn_protocols=["h3"],
                                                **tls_https(api, lb))
    assert fault(api, lb, 400, alpn_protocols=[], **tls_https(api, lb)) == (
        "Validation failure: Empty ALPN protocol list. Either specify at least one ALPN "
        "protocol or remove this parameter to use the default.")
    li = make(api, lb, tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256", tls_versions=["TLSv1.3"],
              alpn_protocols=["h2"], **tls_https(api, lb))
    assert (li["tls_ciphers"], li["tls_versions"], li["alpn_protocols"]) == (
        "ECDHE-RSA-AES128-GCM-SHA256", ["TLSv1.3"], ["h2"])


def test_hsts_rules(api):
    lb = api.create_lb()
    assert fault(api, lb, 400, protocol="HTTP", protocol_port=80, hsts_max_age=10) == (
        "Validation failure: The HSTS feature can only be used for listeners using the "
        "TERMINATED_HTTPS protocol.")
    assert fault(api, lb, 400, hsts_preload=True, **tls_https(api, lb)) == (
        "Validation failure: HSTS configuration options hsts_include_subdomains and "
        "hsts_preload only make sense if hsts_max_age is set as well.")
    li = make(api, lb, hsts_max_age=31536000, hsts_include_subdomains=True, hsts_preload=True,
              **tls_https(api, lb))
    assert (li["hsts_max_age"], li["hsts_include_subdomains"], li["hsts_preload"]) == (
        31536000, True, True)


# update ---------------------------------------------------------------------------------------
def test_update_returns_200_with_new_values(api):
    lb = api.create_lb()
    pool = add_pool(api, lb, "HTTP")
    li = make(api, lb, "HTTP", 80, name="a", tags=["x"])
    before = generation(api, lb["id"])
    code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": {
        "name": "b", "description": "desc", "admin_state_up": False, "connection_limit": 5,
        "default_pool_id": pool, "timeout_client_data": 7, "tags": ["y", "z"],
        "insert_headers": {"X-Forwarded-For": "true"}, "allowed_cidrs": ["192.0.2.9/24"]}})
    assert code == 200, body
    new = body["listener"]
    assert new["provisioning_status"] == "PENDING_UPDATE"
    assert (new["name"], new["description"], new["admin_state_up"],
            new["connection_limit"]) == ("b", "desc", False, 5)
    assert new["default_pool_id"] == pool and new["timeout_client_data"] == 7
    assert sorted(new["tags"]) == ["y", "z"]
    assert new["insert_headers"] == {"X-Forwarded-For": "true"}
    assert new["allowed_cidrs"] == ["192.0.2.0/24"]
    assert new["updated_at"] is not None
    assert generation(api, lb["id"]) == before + 1
    api.wait_lb(lb["id"])
    code, body = api.get(f"{LISTENERS}/{li['id']}")
    assert body["listener"]["provisioning_status"] == "ACTIVE"
    assert body["listener"]["name"] == "b"
    for immutable in ({"protocol": "TCP"}, {"protocol_port": 81},
                      {"loadbalancer_id": lb["id"]}, {"project_id": "p"}):
        code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": immutable})
        assert code == 400 and "Unknown attribute" in body["faultstring"], immutable


def test_update_nulls_reset_to_defaults(api):
    lb = api.create_lb()
    project = lb["project_id"]
    pool = add_pool(api, lb, "HTTP")
    ca = add_secret(api, project)
    li = make(api, lb, name="n", description="d", connection_limit=9, default_pool_id=pool,
              timeout_client_data=1, timeout_member_connect=2, timeout_member_data=3,
              timeout_tcp_inspect=4, client_ca_tls_container_ref=ca,
              client_authentication="MANDATORY", tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256",
              tls_versions=["TLSv1.3"], alpn_protocols=["h2"], hsts_max_age=5,
              hsts_include_subdomains=True, hsts_preload=True,
              allowed_cidrs=["10.0.0.0/8"], insert_headers={"X-Forwarded-For": "true"},
              **tls_https(api, lb))
    nulls = ["name", "description", "connection_limit", "default_pool_id",
             "timeout_client_data", "timeout_member_connect", "timeout_member_data",
             "timeout_tcp_inspect", "client_authentication", "tls_ciphers", "tls_versions",
             "alpn_protocols", "hsts_max_age", "hsts_include_subdomains", "hsts_preload",
             "allowed_cidrs", "insert_headers", "admin_state_up"]
    code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": dict.fromkeys(nulls)})
    assert code == 200, body
    new = body["listener"]
    assert new["name"] == "" and new["description"] == ""
    assert new["connection_limit"] == -1 and new["default_pool_id"] is None
    assert (new["timeout_client_data"], new["timeout_member_connect"],
            new["timeout_member_data"], new["timeout_tcp_inspect"]) == (50000, 5000, 50000, 0)
    assert new["client_authentication"] == "NONE"
    assert new["client_ca_tls_container_ref"] == ca
    assert new["tls_ciphers"] == SUITE_B_CIPHERS
    assert new["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert new["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    assert (new["hsts_max_age"], new["hsts_include_subdomains"], new["hsts_preload"]) == (
        None, False, False)
    assert new["allowed_cidrs"] is None and new["insert_headers"] == {}
    assert new["admin_state_up"] is False
    api.wait_lb(lb["id"])
    plain = make(api, lb, "HTTP", 80)
    code, body = api.put(f"{LISTENERS}/{plain['id']}", {"listener": {"tls_ciphers": None}})
    assert code == 200 and body["listener"]["tls_ciphers"] is None


def test_update_validates_merged_state(api):
    lb = api.create_lb()
    project = lb["project_id"]
    http = make(api, lb, "HTTP", 80)
    tls = make(api, lb, **tls_https(api, lb))
    udp = make(api, lb, "UDP", 53)
    ca, crl = add_secret(api, project), add_secret(api, project)

    def put_fault(li: dict[str, Any], status: int, **fields: Any) -> str:
        code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": fields})
        assert code == status, body
        return body["faultstring"]

    assert "HSTS feature" in put_fault(http, 400, hsts_max_age=1)
    assert put_fault(tls, 400, hsts_preload=True) == (
        "Validation failure: Cannot enable hsts_include_subdomains or hsts_preload if "
        "hsts_max_age was not set as well.")
    assert "requires a client CA" in put_fault(tls, 400, client_authentication="OPTIONAL")
    assert "is not a valid option for HTTP protocol listener" in put_fault(
        http, 400, insert_headers={"X-SSL-Issuer": "true"})
    assert "not allowed on HTTP protocol" in put_fault(
        http, 400, default_tls_container_ref=ca)
    assert put_fault(udp, 400, sni_container_refs=[ca]) == (
        "Validation failure: UDP protocol listener does not support TLS or header insertion.")
    assert "must be provided for TERMINATED_HTTPS" in put_fault(
        tls, 400, default_tls_container_ref=None)
    assert "CIDR 2001:db8::/32" in put_fault(http, 400, allowed_cidrs=["2001:db8::/32"])
    assert "Could not retrieve certificate" in put_fault(
        tls, 400, client_ca_tls_container_ref="nope")
    missing = str(uuid.uuid4())
    assert put_fault(http, 404, default_pool_id=missing) == f"Pool {missing} not found."
    assert "Empty TLS version list" in put_fault(tls, 400, tls_versions=[])
    # Client auth with a stored CA, and a CRL next to the stored CA, are fine.
    code, body = api.put(f"{LISTENERS}/{tls['id']}", {"listener": {
        "client_ca_tls_container_ref": ca}})
    assert code == 200, body
    api.wait_lb(lb["id"])
    code, body = api.put(f"{LISTENERS}/{tls['id']}", {"listener": {
        "client_authentication": "MANDATORY", "client_crl_container_ref": crl,
        "hsts_max_age": 100, "hsts_preload": True}})
    assert code == 200, body
    api.wait_lb(lb["id"])
    assert "revocation list" in put_fault(tls, 400, client_ca_tls_container_ref=None,
                                          client_authentication="NONE")


def test_listener_in_error_can_be_updated(api):
    lb = api.create_lb()
    li = make(api, lb)
    with api.service.engine.begin() as conn:
        conn.execute(update(t.listener).where(t.listener.c.id == li["id"])
                     .values(provisioning_status="ERROR"))
    code, body = api.put(f"{LISTENERS}/{li['id']}", {"listener": {"name": "fixed"}})
    assert code == 200 and body["listener"]["provisioning_status"] == "PENDING_UPDATE"
    api.wait_lb(lb["id"])
    code, body = api.get(f"{LISTENERS}/{li['id']}")
    assert body["listener"]["provisioning_status"] == "ACTIVE"


# list -----------------------------------------------------------------------------------------
def test_list_filters_sorting_pagination_fields_tags(api):
    lb1, lb2 = api.create_lb(), api.create_lb()
    a = make(api, lb1, "HTTP", 80, name="a", tags=["red"])
    b = make(api, lb1, "TCP", 81, name="b", tags=["red", "blue"])
    c = make(api, lb2, "HTTP", 82, name="c")
    code, body = api.get(LISTENERS)
    assert code == 200 and [x["id"] for x in body["listeners"]] == [a["id"], b["id"], c["id"]]
    code, body = api.get(f"{LISTENERS}?loadbalancer_id={lb1['id']}")
    assert {x["id"] for x in body["listeners"]} == {a["id"], b["id"]}
    code, body = api.get(f"{LISTENERS}?protocol=HTTP&protocol_port=82")
    assert [x["id"] for x in body["listeners"]] == [c["id"]]
    code, body = api.get(f"{LISTENERS}?sort=protocol_port:desc")
    assert [x["protocol_port"] for x in body["listeners"]] == [82, 81, 80]
    code, body = api.get(f"{LISTENERS}?limit=2")
    assert len(body["listeners"]) == 2
    assert [x["rel"] for x in body["listeners_links"]] == ["next"]
    code, body = api.get(f"{LISTENERS}?limit=2&marker={b['id']}")
    assert [x["id"] for x in body["listeners"]] == [c["id"]]
    assert {x["rel"] for x in body["listeners_links"]} == {"previous"}
    code, body = api.get(f"{LISTENERS}?fields=id&fields=name")
    assert body["listeners"][0] == {"id": a["id"], "name": "a"}
    code, body = api.get(f"{LISTENERS}/{a['id']}?fields=id,protocol")
    assert body == {"listener": {"id": a["id"], "protocol": "HTTP"}}
    code, body = api.get(f"{LISTENERS}?tags=red,blue")
    assert [x["id"] for x in body["listeners"]] == [b["id"]]
    code, body = api.get(f"{LISTENERS}?not-tags-any=red")
    assert [x["id"] for x in body["listeners"]] == [c["id"]]
    code, body = api.get(f"{LISTENERS}?project_id=nobody")
    assert code == 200 and body["listeners"] == []
    code, body = api.get(f"{LISTENERS}?bogus=1")
    assert code == 400
    assert body["faultstring"] == "One or more arguments are either duplicate or invalid"
    code, body = api.get(f"{LISTENERS}?sort=vip:asc")
    assert code == 400 and body["faultstring"] == "Supplied sort key 'vip' is not valid."
    code, body = api.get(f"/v2.0/lbaas/listeners/{a['id']}")
    assert code == 200


# stats, delete, 404 -----------------------------------------------------------------------------
def test_stats(api):
    lb = api.create_lb()
    li = make(api, lb)
    code, body = api.get(f"{LISTENERS}/{li['id']}/stats")
    assert code == 200 and body == {"stats": {
        "bytes_in": 0, "bytes_out": 0, "active_connections": 0, "total_connections": 0,
        "request_errors": 0}}
    with api.service.engine.begin() as conn:
        amp = conn.execute(select(t.amphora.c.id).where(
            t.amphora.c.load_balancer_id == lb["id"], t.amphora.c.status == "ALLOCATED"))\
            .scalar_one()
        conn.execute(t.listener_statistics.insert(), [
            {"listener_id": li["id"], "amphora_id": amp, "bytes_in": 10, "bytes_out": 20,
             "active_connections": 3, "total_connections": 40, "request_errors": 1},
            {"listener_id": li["id"], "amphora_id": str(uuid.uuid4()), "bytes_in": 5,
             "bytes_out": 6, "active_connections": 7, "total_connections": 8,
             "request_errors": 2},
        ])
    code, body = api.get(f"{LISTENERS}/{li['id']}/stats")
    assert body == {"stats": {"bytes_in": 15, "bytes_out": 26, "active_connections": 3,
                              "total_connections": 48, "request_errors": 3}}


def test_delete_then_gone_after_reconcile(api):
    lb = api.create_lb()
    li = make(api, lb)
    code, body = api.delete(f"{LISTENERS}/{li['id']}")
    assert code == 204 and body is None
    code, body = api.get(f"{LISTENERS}/{li['id']}")
    if code == 200:
        assert body["listener"]["provisioning_status"] == "PENDING_DELETE"
    api.wait_lb(lb["id"])
    missing = f"Listener {li['id']} not found."
    for call in (lambda: api.get(f"{LISTENERS}/{li['id']}"),
                 lambda: api.get(f"{LISTENERS}/{li['id']}/stats"),
                 lambda: api.put(f"{LISTENERS}/{li['id']}", {"listener": {"name": "x"}}),
                 lambda: api.delete(f"{LISTENERS}/{li['id']}")):
        code, body = call()
        assert code == 404 and body["faultstring"] == missing
    code, body = api.get(f"{LBS}/{lb['id']}")
    assert body["loadbalancer"]["listeners"] == []
    make(api, lb, "HTTP", 80)


def test_allowed_cidrs_on_ipv6_vip(service_factory):
    v6 = {"name": "v6", "subnet_name": "v6-subnet", "cidr": "2001:db8:1::/64",
          "gateway_ip": "2001:db8:1::1", "allocation_start": "2001:db8:1::10",
          "allocation_end": "2001:db8:1::ff"}
    api = service_factory(networking={"networks": [v6]})
    lb = api.create_lb(vip_subnet_id=api.subnet_id("v6-subnet"))
    assert ":" in lb["vip_address"]
    assert "CIDR 10.0.0.0/8 IP version incompatible" in fault(
        api, lb, 400, protocol="TCP", protocol_port=22, allowed_cidrs=["10.0.0.0/8"])
    li = make(api, lb, "TCP", 22, allowed_cidrs=["2001:DB8::5/48"])
    assert li["allowed_cidrs"] == ["2001:db8::/48"]
