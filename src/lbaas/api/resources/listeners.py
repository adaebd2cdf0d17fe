"""Listeners: CRUD and stats under a load balancer.

Key choice: every semantic rule runs on the *merged* listener (stored values overlaid with the
request), so create and update share one validator and an update can never leave a listener in
a state a create would refuse. ``prepare_listener``/``insert_listener`` are split from the HTTP
handler so the single-call (graph) load balancer create can build listeners the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from lbaas.api import certificates, common, listing, tls_options
from lbaas.api.errors import BadRequest, Conflict, InvalidInput, NotFound, ValidationFailure
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud
from lbaas.api.resources.loadbalancers import sum_stats
from lbaas.api.resources.spec import Resource, Target
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    PROJECT_ID,
    TAGS,
    Bool,
    Cidr,
    Enum,
    Field,
    Int,
    ListOf,
    String,
    StringDict,
    Uuid,
    description_field,
    name_field,
    parse_envelope,
)
from lbaas.domain import constants as c
from lbaas.render import validate
from lbaas.store import raw_insert
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, ids_by, tags_for

RESOURCE = "listener"
LABEL = "Listener"

TERMINATED_HTTPS = "TERMINATED_HTTPS"
PROMETHEUS = "PROMETHEUS"
HEADER_PROTOCOLS = frozenset({"HTTP", TERMINATED_HTTPS})
TIMEOUTS = ("timeout_client_data", "timeout_member_connect", "timeout_member_data",
            "timeout_tcp_inspect")
REF_FIELDS = ("default_tls_container_ref", "sni_container_refs", "client_ca_tls_container_ref",
              "client_crl_container_ref")
CIPHER_PATTERN = r"^[A-Za-z0-9\-+!:@=_.]*$"
_CIPHER_RE = re.compile(CIPHER_PATTERN)
MAX_INT32 = 2**31 - 1
MAX_SNI_REFS = 100  # beyond upstream: each one is a certificate fetched and rendered


def _check_ciphers(name: str, value: str) -> str:
    if not _CIPHER_RE.match(value):
        raise InvalidInput(name, value, f"Value should match the pattern {CIPHER_PATTERN}")
    return value


def _check_alpn(name: str, value: list[str]) -> list[str]:
    for proto in value:
        if proto not in c.ALPN_PROTOCOLS:
            raise InvalidInput(name, value, f"Invalid ALPN protocol: {proto}")
    return value


FIELDS = (
    name_field(), description_field(), ADMIN_STATE_UP, PROJECT_ID,
    Field("loadbalancer_id", Uuid(), required=True, on_update=False),
    Field("protocol", Enum(c.LISTENER_PROTOCOLS), required=True, on_update=False),
    Field("protocol_port", Int(1, 65535), required=True, on_update=False),
    Field("connection_limit", Int(minimum=-1, maximum=validate.MAX_INT32)),
    Field("default_pool_id", Uuid()),
    Field("default_tls_container_ref", String(255)),
    Field("sni_container_refs", ListOf(String(255), max_items=MAX_SNI_REFS)),
    Field("client_authentication", Enum(c.CLIENT_AUTH_MODES)),
    Field("client_ca_tls_container_ref", String(255)),
    Field("client_crl_container_ref", String(255)),
    Field("insert_headers", StringDict(255)),
    *(Field(name, Int(0, c.MAX_TIMEOUT_MS)) for name in TIMEOUTS),
    Field("allowed_cidrs", ListOf(Cidr())),
    Field("tls_ciphers", String(2048), check=_check_ciphers),
    Field("tls_versions", ListOf(String(32))),
    Field("alpn_protocols", ListOf(String(32)), check=_check_alpn),
    Field("hsts_max_age", Int(0, MAX_INT32)),
    Field("hsts_include_subdomains", Bool()),
    Field("hsts_preload", Bool()),
    TAGS,
)

COLLECTION = listing.Collection(t.listener, "listeners", "listeners_links",
                                extra_filters=frozenset({"tenant_id"}))


# rendering ------------------------------------------------------------------------------------
def render(row: Row[Any], policies: list[str], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": common.text(row.name),
        "description": common.text(row.description),
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "admin_state_up": row.admin_state_up,
        "protocol": row.protocol,
        "protocol_port": row.protocol_port,
        "connection_limit": row.connection_limit,
        "default_tls_container_ref": row.default_tls_container_ref,
        "sni_container_refs": list(row.sni_container_refs or []),
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "default_pool_id": row.default_pool_id,
        "l7policies": [{"id": i} for i in policies],
        "insert_headers": dict(row.insert_headers or {}),
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "loadbalancers": [{"id": row.load_balancer_id}],
        "timeout_client_data": row.timeout_client_data,
        "timeout_member_connect": row.timeout_member_connect,
        "timeout_member_data": row.timeout_member_data,
        "timeout_tcp_inspect": row.timeout_tcp_inspect,
        "tags": tags,
        "client_ca_tls_container_ref": row.client_ca_tls_container_ref,
        "client_authentication": row.client_authentication or "NONE",
        "client_crl_container_ref": row.client_crl_container_ref,
        "allowed_cidrs": list(row.allowed_cidrs) if row.allowed_cidrs else None,
        "tls_ciphers": row.tls_ciphers,
        "tls_versions": list(row.tls_versions) if row.tls_versions is not None else None,
        "alpn_protocols": list(row.alpn_protocols) if row.alpn_protocols is not None else None,
        "hsts_max_age": row.hsts_max_age,
        "hsts_include_subdomains": bool(row.hsts_include_subdomains),
        "hsts_preload": bool(row.hsts_preload),
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    policies = ids_by(conn, t.l7policy, "listener_id", ids, order="position")
    tags = tags_for(conn, ids)
    return [render(r, policies[r.id], tags[r.id]) for r in rows]


# validation -----------------------------------------------------------------------------------
def _unique(items: Iterable[str]) -> list[str]:
    """Drop repeats, keep first-seen order (SNI order matters to HAProxy)."""
    return list(dict.fromkeys(items))


def _disabled(value: str) -> BadRequest:
    return BadRequest(f"The selected protocol is not allowed in this deployment: {value}")


def _check_insert_headers(headers: dict[str, str], protocol: str) -> None:
    if protocol not in HEADER_PROTOCOLS:
        raise BadRequest(f"insert-headers is not a valid option for a {protocol} protocol "
                         "listener.")
    keys = list(headers)
    known = set(c.HTTP_INSERT_HEADERS) | set(c.SSL_CLIENT_HEADERS)
    if any(k not in known for k in keys):
        raise BadRequest(f"{keys} is not a valid option for insert_headers")
    if protocol != TERMINATED_HTTPS:
        ssl = [k for k in keys if k in c.SSL_CLIENT_HEADERS]
        if ssl:
            raise BadRequest(f"{ssl} is not a valid option for {protocol} protocol listener.")
    for key, value in headers.items():
        if validate.header_flag(value) is None:
            raise ValidationFailure(f"The value of insert header {key} must be 'true' or "
                                    f"'false', not '{value}'.")


def _check_alpn_list(protocols: list[str]) -> None:
    if not protocols:
        raise ValidationFailure("Empty ALPN protocol list. Either specify at least one ALPN "
                                "protocol or remove this parameter to use the default.")


def _vip_addresses(lb: Row[Any]) -> list[str]:
    vips = [lb.vip_address] if lb.vip_address else []
    vips.extend(v["ip_address"] for v in (lb.additional_vips or []) if v.get("ip_address"))
    return vips


def _check_cidrs(lb: Row[Any], cidrs: list[str]) -> None:
    vips = _vip_addresses(lb)
    families = {ipaddress.ip_address(v).version for v in vips}
    for cidr in cidrs:
        if ipaddress.ip_network(cidr).version not in families:
            raise ValidationFailure(f"CIDR {cidr} IP version incompatible with all VIPs "
                                    f"{vips} IP version.")


def _check_default_pool(conn: Connection, lb_id: str, pool_id: str, protocol: str,
                        new_pools: dict[str, Row[Any]] | None = None) -> None:
    """``new_pools``: the rows of the pools this transaction created under a new load balancer
    (the single-call create), by id: not read again."""
    if protocol == PROMETHEUS:
        raise BadRequest("Protocol PROMETHEUS listeners cannot have child objects.")
    pool = new_pools.get(pool_id) if new_pools is not None else None
    if pool is None:
        pool = conn.execute(select(t.pool).where(
            t.pool.c.id == pool_id, t.pool.c.load_balancer_id == lb_id)).first()
    if pool is None or pool.provisioning_status == c.DELETED:
        raise NotFound("Pool", pool_id)
    if pool.protocol not in c.VALID_LISTENER_POOL_PROTOCOLS[protocol]:
        raise ValidationFailure(f"The pool protocol '{pool.protocol}' is invalid while the "
                                f"listener protocol is '{protocol}'.")


_SAME_PORT = select(t.listener.c.protocol).where(  # built once, as common's statements
    t.listener.c.load_balancer_id == bindparam("lb_id"),
    t.listener.c.protocol_port == bindparam("port"))


def _check_port_free(conn: Connection, lb_id: str, protocol: str, port: int,
                     siblings: list[Row[Any]] | None = None) -> None:
    """``siblings``: every listener of a load balancer created in this transaction (the
    single-call create), instead of reading them."""
    l4 = c.L4_PROTOCOL[protocol]
    others = conn.execute(_SAME_PORT, {"lb_id": lb_id, "port": port}) \
        if siblings is None else [r for r in siblings if r.protocol_port == port]
    for other in others:
        if c.L4_PROTOCOL.get(other.protocol) == l4:
            raise Conflict(f"Another Listener on this Load Balancer is already using protocol "
                           f"{other.protocol} and protocol_port {port}")


def _tls_offload(v: dict[str, Any]) -> bool:
    """TERMINATED_HTTPS always terminates TLS; PROMETHEUS does once it has a certificate."""
    return v["protocol"] == TERMINATED_HTTPS or (
        v["protocol"] == PROMETHEUS and any(v.get(k) for k in REF_FIELDS))


def validate_listener(conn: Connection, req: ApiRequest, lb: Row[Any], v: dict[str, Any],
                      given: dict[str, Any], creating: bool,
                      siblings: list[Row[Any]] | None = None) -> None:
    """Octavia's cross-field rules on the merged listener ``v``; ``given`` is the request;
    ``siblings`` as for ``_check_port_free``."""
    api = req.app.settings.api
    protocol = v["protocol"]
    has_refs = any(v.get(k) for k in REF_FIELDS)
    has_cert = bool(v.get("default_tls_container_ref") or v.get("sni_container_refs"))
    offload = _tls_offload(v)
    if v.get("insert_headers"):
        _check_insert_headers(v["insert_headers"], protocol)
    if protocol in c.UDP_LIKE and has_refs:
        tail = "TLS." if creating else "TLS or header insertion."
        raise ValidationFailure(f"{protocol} protocol listener does not support {tail}")
    if creating and offload and not api.allow_tls_terminated_listeners:
        raise _disabled(f"{protocol} with TLS" if protocol == PROMETHEUS else protocol)
    if creating and protocol == PROMETHEUS and not api.allow_prometheus_listeners:
        raise _disabled(PROMETHEUS)
    if has_refs and protocol not in (TERMINATED_HTTPS, PROMETHEUS):
        raise ValidationFailure(f"Certificate container references are not allowed on "
                                f"{protocol} protocol listeners.")
    if v.get("client_ca_tls_container_ref") and not has_cert:
        raise ValidationFailure("An SNI or default certificate container reference must be "
                                "provided with a client CA container reference.")
    if offload and not has_cert:
        label = f"{protocol} with TLS" if protocol == PROMETHEUS else protocol
        raise ValidationFailure("An SNI or default certificate container reference must be "
                                f"provided for {label} protocol listeners.")
    auth = v.get("client_authentication") or "NONE"
    if auth != "NONE" and not v.get("client_ca_tls_container_ref"):
        raise ValidationFailure(f"Client authentication setting {auth} requires a client CA "
                                "container reference.")
    if v.get("client_crl_container_ref") and not v.get("client_ca_tls_container_ref"):
        raise ValidationFailure("A client authentication CA reference is required to specify "
                                "a client authentication revocation list.")
    if given.get("tls_ciphers"):
        tls_options.check_ciphers(req, given["tls_ciphers"])
    # Only refs named in this request are fetched again (as upstream does on update).
    cert_refs = list(given.get("sni_container_refs") or [])
    if given.get("default_tls_container_ref"):
        cert_refs.append(given["default_tls_container_ref"])
    certificates.check_server_refs(req, conn, lb.project_id, cert_refs)
    if given.get("client_ca_tls_container_ref") or given.get("client_crl_container_ref"):
        certificates.check_ca_refs(req, conn, lb.project_id, v.get("client_ca_tls_container_ref"),
                                   v.get("client_crl_container_ref"))
    if creating:
        _check_port_free(conn, lb.id, protocol, v["protocol_port"], siblings)
    if v.get("allowed_cidrs"):
        _check_cidrs(lb, v["allowed_cidrs"])
    for key, check in (("tls_versions", lambda x: tls_options.check_tls_versions(req, x)),
                       ("alpn_protocols", _check_alpn_list)):
        if given.get(key) is not None or (offload and v.get(key) is not None):
            check(v[key])
    _check_hsts(v, given, creating)


def _check_hsts(v: dict[str, Any], given: dict[str, Any], creating: bool) -> None:
    enabling = given.get("hsts_include_subdomains") or given.get("hsts_preload")
    if enabling and v.get("hsts_max_age") is None:
        raise ValidationFailure(
            "HSTS configuration options hsts_include_subdomains and hsts_preload only make "
            "sense if hsts_max_age is set as well." if creating else
            "Cannot enable hsts_include_subdomains or hsts_preload if hsts_max_age was not "
            "set as well.")
    if given.get("hsts_max_age") is not None and v["protocol"] != TERMINATED_HTTPS:
        raise ValidationFailure("The HSTS feature can only be used for listeners using the "
                                "TERMINATED_HTTPS protocol.")


# defaults -------------------------------------------------------------------------------------
def _tls_defaults(req: ApiRequest) -> dict[str, Any]:
    api = req.app.settings.api
    return {"tls_ciphers": api.default_listener_ciphers,
            "tls_versions": list(api.default_listener_tls_versions),
            "alpn_protocols": list(api.default_listener_alpn_protocols)}


def _reset_value(req: ApiRequest, key: str, protocol: str) -> Any:
    """What an explicit ``null`` (or an absent create field) means for ``key``."""
    haproxy = req.app.settings.haproxy
    if key == "connection_limit":
        return -1
    if key in TIMEOUTS:
        return getattr(haproxy, key)
    if key == "client_authentication":
        return "NONE"
    if key in ("hsts_include_subdomains", "hsts_preload", "admin_state_up"):
        return False
    if key == "sni_container_refs":
        return []
    if key in ("tls_ciphers", "tls_versions", "alpn_protocols"):
        return _tls_defaults(req)[key] if protocol == TERMINATED_HTTPS else None
    return None


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if out.get("sni_container_refs") is not None:
        out["sni_container_refs"] = _unique(out["sni_container_refs"])
    if "allowed_cidrs" in out:
        out["allowed_cidrs"] = _unique(out["allowed_cidrs"] or []) or None
    if "insert_headers" in out:
        out["insert_headers"] = out["insert_headers"] or {}
    if "admin_state_up" in out:
        out["admin_state_up"] = bool(out["admin_state_up"])
    return out


STORED = ("name", "description", "admin_state_up", "connection_limit", "default_pool_id",
          "default_tls_container_ref", "sni_container_refs", "client_authentication",
          "client_ca_tls_container_ref", "client_crl_container_ref", "insert_headers",
          *TIMEOUTS, "allowed_cidrs", "tls_ciphers", "tls_versions", "alpn_protocols",
          "hsts_max_age", "hsts_include_subdomains", "hsts_preload")


def prepare_listener(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                     now: Any, new_lb: tuple[dict[str, Row[Any]], list[Row[Any]]] | None = None) \
        -> dict[str, Any]:
    """Validate a parsed create body against ``lb``; return the listener's column values.

    Checks neither quota nor the load balancer's status: callers do that once per request.
    ``new_lb``: ``lb`` was created in this transaction (the single-call create), with these
    pools (by id) and listeners so far; they are not read again.
    """
    new_pools, siblings = new_lb if new_lb is not None else (None, None)
    given = _normalise(body)
    protocol = given["protocol"]
    v: dict[str, Any] = {"protocol": protocol, "protocol_port": given["protocol_port"]}
    for key in STORED:
        value = given.get(key)
        v[key] = _reset_value(req, key, protocol) if value is None else value
    if v["default_pool_id"]:
        _check_default_pool(conn, lb.id, v["default_pool_id"], protocol, new_pools)
    validate_listener(conn, req, lb, v, given, creating=True, siblings=siblings)
    v.update(id=common.new_id(), load_balancer_id=lb.id, project_id=lb.project_id,
             provisioning_status=c.PENDING_CREATE, operating_status=c.OFFLINE,
             created_at=now)
    return v




def insert_listener(conn: Connection, values: dict[str, Any], tags: list[str] | None) -> None:
    raw_insert.insert(conn, t.listener, values)
    add_tags(conn, values["id"], tags)


def prepare_update(conn: Connection, req: ApiRequest, lb: Row[Any], row: Row[Any],
                   body: dict[str, Any]) -> dict[str, Any]:
    """Merge a parsed update body into ``row``; return only the columns that change."""
    given = _normalise(body)
    given.pop("tags", None)
    merged = {k: getattr(row, k) for k in (*STORED, "protocol", "protocol_port")}
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            value = _reset_value(req, key, row.protocol)
        changes[key] = value
    merged.update(changes)
    if changes.get("default_pool_id"):
        _check_default_pool(conn, lb.id, changes["default_pool_id"], row.protocol)
    validate_listener(conn, req, lb, merged, given, creating=False)
    return changes


# handlers -------------------------------------------------------------------------------------
async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), "listener", FIELDS, "create")
    state = req.app
    now = common.utcnow()
    with state.engine.begin() as conn:
        lb = common.lock_lb(conn, body["loadbalancer_id"])
        common.authorize(req, RESOURCE, "post", lb.project_id)
        values = prepare_listener(conn, req, lb, body, now)
        common.check_quota(conn, req, lb.project_id, "listener")
        common.require_lb_mutable(lb)
        insert_listener(conn, values, body.get("tags"))
        common.mark_lb_changed(conn, lb.id)
        # a new listener has no L7 policies yet
        view = render(common.inserted_row(conn, t.listener, values, LABEL), [],
                      common.new_tags(conn, values["id"], body.get("tags")))
    state.notify(lb.id)
    return Response(201, {"listener": view})


def _target(conn: Connection, req: ApiRequest, listener_id: str, verb: str) \
        -> tuple[Row[Any], Row[Any]]:
    """The listener and its locked load balancer, once the caller may ``verb`` it."""
    row = common.get_row(conn, t.listener, listener_id, LABEL)
    lb = common.lock_lb(conn, row.load_balancer_id)
    common.authorize(req, RESOURCE, verb, lb.project_id)
    return row, lb


def _prepare_update(conn: Connection, req: ApiRequest, listener_id: str,
                    body: dict[str, Any]) -> Target:
    row, lb = _target(conn, req, listener_id, "put")
    changes = prepare_update(conn, req, lb, row, body)
    common.require_lb_mutable(lb)
    return Target(row, lb, changes)


def _prepare_delete(conn: Connection, req: ApiRequest, listener_id: str) -> Target:
    row, lb = _target(conn, req, listener_id, "delete")
    common.require_lb_mutable(lb)
    return Target(row, lb)


def _mark_lb_changed(conn: Connection, target: Target, body: dict[str, Any] | None = None) \
        -> None:
    common.mark_lb_changed(conn, target.lb.id)


async def stats(req: ApiRequest) -> Response:
    listener_id = req.path_params["id"]
    with req.app.engine.connect() as conn:
        row = common.get_row(conn, t.listener, listener_id, LABEL)
        common.authorize(req, RESOURCE, "get_stats", row.project_id)
        totals = sum_stats(conn, [listener_id])
    return Response(200, {"stats": totals})


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.listener,
    path="/v2/lbaas/listeners", fields=FIELDS, collection=COLLECTION, render_many=render_many,
    prepare_update=_prepare_update, after_update=_mark_lb_changed,
    prepare_delete=_prepare_delete, after_delete=_mark_lb_changed)
HANDLERS = crud.handlers(SPEC, create, item_routes=[("GET", "/stats", stats)])
register = HANDLERS.register
OPENAPI = SPEC.openapi()
