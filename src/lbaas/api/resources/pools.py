"""Pools: CRUD under a load balancer, optionally as a listener's default pool.

Creation is split into ``prepare_pool`` (semantic validation, returns the row values) and
``insert_pool`` so the single-call graph create can reuse them. A pool's listeners are the
listeners whose default pool it is plus those with an L7 policy redirecting to it: both are
locked by pool changes. ``SOURCE_IP_PORT`` is accepted on every provider (upstream's amphora
driver answers 501; this data plane renders it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, union_all, update

from lbaas.api import certificates, common, listing, tls_options
from lbaas.api.errors import (
    BadRequest,
    Conflict,
    ImmutableObject,
    ValidationFailure,
)
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud
from lbaas.api.resources.spec import Resource, Target
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    PROJECT_ID,
    TAGS,
    Bool,
    Enum,
    Field,
    Int,
    IpAddress,
    ListOf,
    Object,
    String,
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

RESOURCE = "pool"
LABEL = "Pool"

SP_FIELDS = (
    Field("cookie_name", String(255)),
    Field("persistence_timeout", Int(minimum=0, maximum=validate.MAX_INT32)),
    Field("persistence_granularity", IpAddress()),
)
SP_CREATE = Object((Field("type", Enum(c.SESSION_PERSISTENCE_TYPES), required=True,
                          nullable=False), *SP_FIELDS), name="session_persistence")
SP_UPDATE = Object((Field("type", Enum(c.SESSION_PERSISTENCE_TYPES)), *SP_FIELDS),
                   name="session_persistence")
SP_KEYS = ("type", "cookie_name", "persistence_timeout", "persistence_granularity")

FIELDS = (
    name_field(), description_field(), ADMIN_STATE_UP, PROJECT_ID,
    Field("loadbalancer_id", Uuid(), on_update=False),
    Field("listener_id", Uuid(), on_update=False),
    Field("protocol", Enum(c.POOL_PROTOCOLS), required=True, nullable=False, on_update=False),
    Field("lb_algorithm", Enum(c.LB_ALGORITHMS), required=True, nullable=False),
    Field("session_persistence", SP_CREATE, on_update=False),
    Field("session_persistence", SP_UPDATE, on_create=False),
    Field("tls_enabled", Bool(), default=False),
    Field("tls_container_ref", String(255)),
    Field("ca_tls_container_ref", String(255)),
    Field("crl_container_ref", String(255)),
    Field("tls_ciphers", String(2048)),
    Field("tls_versions", ListOf(String(32))),
    Field("alpn_protocols", ListOf(String(32))),
    TAGS,
)

COLLECTION = listing.Collection(t.pool, "pools", "pools_links", derived={
    "healthmonitor_id": lambda hm_id: t.pool.c.id.in_(
        select(t.health_monitor.c.pool_id).where(t.health_monitor.c.id == hm_id))})


# -- rendering ---------------------------------------------------------------------------------

# Both ways a listener uses a pool, in one statement built once (it runs in most changes).
_POOL_LISTENERS = union_all(
    select(t.listener.c.default_pool_id.label("pool_id"), t.listener.c.id,
           t.listener.c.created_at)
    .where(t.listener.c.default_pool_id.in_(bindparam("pool_ids", expanding=True))),
    select(t.l7policy.c.redirect_pool_id.label("pool_id"), t.listener.c.id,
           t.listener.c.created_at)
    .join(t.listener, t.listener.c.id == t.l7policy.c.listener_id)
    .where(t.l7policy.c.redirect_pool_id.in_(bindparam("pool_ids", expanding=True))))


def pool_listener_ids(conn: Connection, pool_ids: Sequence[str]) -> dict[str, list[str]]:
    """Listeners using each pool: as default pool, or through a redirecting L7 policy."""
    out: dict[str, list[str]] = {p: [] for p in pool_ids}
    if not pool_ids:
        return out
    pairs = list(conn.execute(_POOL_LISTENERS, {"pool_ids": list(pool_ids)}))
    for pool_id, listener_id, _ in sorted(pairs, key=lambda p: (p[2], p[1])):
        if listener_id not in out[pool_id]:
            out[pool_id].append(listener_id)
    return out


def _session_persistence(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    return {k: value.get(k) for k in SP_KEYS}


def render(row: Row[Any], listeners: list[str], members: list[str], hm_id: str | None,
           tags: list[str]) -> dict[str, Any]:
    view = {
        "id": row.id,
        "name": common.text(row.name),
        "description": common.text(row.description),
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "admin_state_up": row.admin_state_up,
        "protocol": row.protocol,
        "lb_algorithm": row.lb_algorithm,
        "session_persistence": _session_persistence(row.session_persistence),
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "loadbalancers": [{"id": row.load_balancer_id}],
        "listeners": [{"id": i} for i in listeners],
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "healthmonitor_id": hm_id,
        "members": [{"id": i} for i in members],
        "tags": tags,
        "tls_container_ref": row.tls_container_ref,
        "ca_tls_container_ref": row.ca_tls_container_ref,
        "crl_container_ref": row.crl_container_ref,
        "tls_enabled": bool(row.tls_enabled),
        "tls_ciphers": row.tls_ciphers,
        "tls_versions": list(row.tls_versions) if row.tls_versions is not None else None,
        "alpn_protocols": list(row.alpn_protocols) if row.alpn_protocols is not None else None,
    }
    if hm_id is None:  # upstream leaves it unset, and WSME leaves unset attributes out
        del view["healthmonitor_id"]
    return view


_POOL_MONITORS = select(t.health_monitor.c.pool_id, t.health_monitor.c.id).where(
    t.health_monitor.c.pool_id.in_(bindparam("pool_ids", expanding=True)))


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    listeners = pool_listener_ids(conn, ids)
    members = ids_by(conn, t.member, "pool_id", ids)
    hms: dict[str, str] = {}
    if ids:
        hms = {p: h for p, h in conn.execute(_POOL_MONITORS, {"pool_ids": ids})}
    tags = tags_for(conn, ids)
    return [render(r, listeners[r.id], members[r.id], hms.get(r.id), tags[r.id]) for r in rows]


# -- validation --------------------------------------------------------------------------------

def validate_listener_protocol(listener: Row[Any], pool_protocol: str) -> None:
    if listener.protocol == "PROMETHEUS":
        raise BadRequest("Protocol PROMETHEUS listeners cannot have child objects.")
    if pool_protocol not in c.VALID_LISTENER_POOL_PROTOCOLS.get(listener.protocol, ()):
        raise ValidationFailure(f"The pool protocol '{pool_protocol}' is invalid while the "
                                f"listener protocol is '{listener.protocol}'.")


def validate_session_persistence(protocol: str, sp: dict[str, Any] | None) -> None:
    """Upstream's per-protocol rules, then ``check_session_persistence``."""
    if not sp:
        return
    sp_type = sp.get("type")
    if protocol in c.UDP_LIKE:
        if sp_type == "SOURCE_IP" and sp.get("cookie_name"):
            raise ValidationFailure("session_persistence SOURCE_IP type for UDP and SCTP "
                                    "protocols only accepts: type, persistence_timeout, "
                                    "persistence_granularity.")
        if sp.get("cookie_name"):
            raise ValidationFailure("Cookie names are not supported for UDP/SCTP pools.")
        if sp_type in ("HTTP_COOKIE", "APP_COOKIE"):
            raise ValidationFailure(f"Session persistence of type {sp_type} is not supported "
                                    "for UDP/SCTP protocol pools.")
    elif sp.get("persistence_timeout") or sp.get("persistence_granularity"):
        raise ValidationFailure("persistence_timeout and persistence_granularity is only for "
                                "UDP and SCTP protocol pools.")
    if sp_type is None:
        raise ValidationFailure("Invalid session_persistence provided.")
    cookie = sp.get("cookie_name")
    if cookie:
        if sp_type != "APP_COOKIE":
            raise ValidationFailure('Field "cookie_name" can only be specified with session '
                                    'persistence of type "APP_COOKIE".')
        if (why := validate.cookie_name_error(cookie)) is not None:
            raise ValidationFailure(why)
    if sp_type == "APP_COOKIE" and not cookie:
        raise ValidationFailure('Field "cookie_name" must be specified when using the '
                                '"APP_COOKIE" session persistence type.')


def _stored_sp(sp: dict[str, Any] | None) -> dict[str, Any] | None:
    if not sp:
        return None
    out = {k: sp.get(k) for k in SP_KEYS}
    if out["persistence_granularity"] is not None:
        out["persistence_granularity"] = str(ipaddress.ip_address(out["persistence_granularity"]))
    return out


def prepare_pool(conn: Connection, req: ApiRequest, lb_row: Row[Any], body: dict[str, Any],
                 now: Any) -> dict[str, Any]:
    """Validate a parsed create body against its load balancer; return the row's values."""
    protocol = body["protocol"]
    sp = body.get("session_persistence")
    validate_session_persistence(protocol, sp)
    tls_enabled = bool(body.get("tls_enabled"))
    if body.get("crl_container_ref") and not body.get("ca_tls_container_ref"):
        raise ValidationFailure("A CA certificate reference is required to specify a "
                                "revocation list.")
    certificates.check_server_refs(req, conn, lb_row.project_id, [body.get("tls_container_ref")])
    certificates.check_ca_refs(req, conn, lb_row.project_id, body.get("ca_tls_container_ref"),
                               body.get("crl_container_ref"))
    tls_options.check_ciphers(req, body.get("tls_ciphers"))
    api = req.app.settings.api
    ciphers, versions, alpn = (body.get("tls_ciphers"), body.get("tls_versions"),
                               body.get("alpn_protocols"))
    if tls_enabled:
        ciphers = ciphers or api.default_pool_ciphers
        versions = versions if versions is not None else list(api.default_pool_tls_versions)
        alpn = alpn if alpn is not None else list(api.default_pool_alpn_protocols)
    # Checked with TLS off too: they are rendered as stored once tls_enabled is turned on.
    tls_options.check_tls_versions(req, versions)
    tls_options.check_alpn(alpn)
    admin = body.get("admin_state_up", True)
    return {
        "id": common.new_id(), "project_id": lb_row.project_id,
        "load_balancer_id": lb_row.id, "name": body.get("name"),
        "description": body.get("description"), "provisioning_status": c.PENDING_CREATE,
        "operating_status": c.OFFLINE, "admin_state_up": bool(admin), "protocol": protocol,
        "lb_algorithm": body["lb_algorithm"], "session_persistence": _stored_sp(sp),
        "tls_enabled": tls_enabled, "tls_container_ref": body.get("tls_container_ref"),
        "ca_tls_container_ref": body.get("ca_tls_container_ref"),
        "crl_container_ref": body.get("crl_container_ref"), "tls_ciphers": ciphers,
        "tls_versions": versions, "alpn_protocols": alpn, "created_at": now,
    }




def insert_pool(conn: Connection, values: dict[str, Any], tags: Sequence[str] | None) -> None:
    raw_insert.insert(conn, t.pool, values)
    add_tags(conn, values["id"], tags)


# -- locking -----------------------------------------------------------------------------------

def lock_pool_change(conn: Connection, lb: Row[Any], listener_ids: Sequence[str]) -> None:
    """409 unless the LB is ACTIVE; then LB and the given listeners -> PENDING_UPDATE."""
    common.require_lb_mutable(lb)
    common.mark_lb_changed(conn, lb.id)
    common.set_status(conn, t.listener, list(listener_ids), c.PENDING_UPDATE, touch=False)


def require_pool_mutable(pool: Row[Any]) -> None:
    if pool.provisioning_status != c.ACTIVE:
        raise ImmutableObject(LABEL, pool.id)


# -- handlers ----------------------------------------------------------------------------------

def _resolve_parents(conn: Connection, body: dict[str, Any]) -> tuple[Row[Any], Row[Any] | None]:
    """The load balancer and (optional) listener a new pool attaches to."""
    lb_id, listener_id = body.get("loadbalancer_id"), body.get("listener_id")
    if not lb_id and not listener_id:
        raise ValidationFailure("Must provide at least one of: loadbalancer_id, listener_id")
    listener = None
    if listener_id:
        listener = common.get_row(conn, t.listener, listener_id, "Listener")
        if lb_id and listener.load_balancer_id != lb_id:
            raise ValidationFailure(f"Listener {listener_id} does not belong to load balancer "
                                    f"{lb_id}.")
        lb_id = listener.load_balancer_id
    lb = common.lock_lb(conn, lb_id)
    if listener is not None:
        # a locking read sees a default pool committed since the first read
        listener = common.get_row(conn, t.listener, listener.id, "Listener", lock=True)
    return lb, listener


_ADOPT_POOL = update(t.listener).where(t.listener.c.id == bindparam("listener_id")).values(
    provisioning_status=bindparam("new_status"), default_pool_id=bindparam("new_pool"))


async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), "pool", FIELDS, "create")
    state = req.app
    now = common.utcnow()
    with state.engine.begin() as conn:
        lb, listener = _resolve_parents(conn, body)
        common.authorize(req, RESOURCE, "post", lb.project_id)
        if listener is not None:
            validate_listener_protocol(listener, body["protocol"])
        values = prepare_pool(conn, req, lb, body, now)
        common.check_quota(conn, req, lb.project_id, "pool")
        if listener is not None and listener.default_pool_id:
            raise Conflict("This listener already has a default pool")
        lock_pool_change(conn, lb, [])
        insert_pool(conn, values, body.get("tags"))
        if listener is not None:  # PENDING_UPDATE and its new default pool in one statement
            conn.execute(_ADOPT_POOL, {"listener_id": listener.id, "new_pool": values["id"],
                                       "new_status": c.PENDING_UPDATE})
        # a new pool: its one listener (if any), no members, no monitor
        view = render(common.inserted_row(conn, t.pool, values, LABEL),
                      [listener.id] if listener is not None else [], [], None,
                      common.new_tags(conn, values["id"], body.get("tags")))
    state.notify(lb.id)
    return Response(201, {"pool": view})


def _merged_sp(pool: Row[Any], body: dict[str, Any]) -> dict[str, Any] | None:
    """The session persistence after an update: null removes it; a body without ``type``
    keeps the stored type; fields not sent are kept only when the type stays the same."""
    sent = body["session_persistence"]
    if sent is None:
        return None
    stored = pool.session_persistence or {}
    sp_type = sent.get("type") or stored.get("type")
    base = dict(stored) if stored.get("type") == sp_type else {}
    base.update({k: v for k, v in sent.items() if k != "type"})
    base["type"] = sp_type
    return {k: base.get(k) for k in SP_KEYS}


def _update_values(conn: Connection, req: ApiRequest, pool: Row[Any],
                   body: dict[str, Any]) -> dict[str, Any]:
    """Validate an update body against the stored pool; return the columns to write."""
    values: dict[str, Any] = {}
    for key in ("name", "description", "lb_algorithm"):
        if key in body:
            values[key] = body[key]
    if "admin_state_up" in body:
        values["admin_state_up"] = bool(body["admin_state_up"])
    if "session_persistence" in body:
        sp = _merged_sp(pool, body)
        validate_session_persistence(pool.protocol, sp)
        values["session_persistence"] = _stored_sp(sp)
    if "tls_enabled" in body:
        values["tls_enabled"] = bool(body["tls_enabled"])
    for key in ("tls_container_ref", "ca_tls_container_ref", "crl_container_ref"):
        if key in body:
            values[key] = body[key]
    crl = body["crl_container_ref"] if "crl_container_ref" in body else pool.crl_container_ref
    if "ca_tls_container_ref" in body:
        ca = body["ca_tls_container_ref"]
        if not ca and pool.ca_tls_container_ref and crl:
            raise ValidationFailure("A CA reference cannot be removed when a certificate "
                                    "revocation list is present.")
    else:
        ca = pool.ca_tls_container_ref
    if crl and not ca:
        raise ValidationFailure("A CA reference is required to specify a certificate "
                                "revocation list.")
    certificates.check_server_refs(req, conn, pool.project_id, [body.get("tls_container_ref")])
    if ca and ("ca_tls_container_ref" in body or "crl_container_ref" in body):
        certificates.check_ca_refs(req, conn, pool.project_id, ca, crl)
    api = req.app.settings.api
    if "tls_ciphers" in body:
        tls_options.check_ciphers(req, body["tls_ciphers"])
        values["tls_ciphers"] = body["tls_ciphers"] or api.default_pool_ciphers
    if "tls_versions" in body:
        tls_options.check_tls_versions(req, body["tls_versions"])
        values["tls_versions"] = (body["tls_versions"] if body["tls_versions"] is not None
                                  else list(api.default_pool_tls_versions))
    if "alpn_protocols" in body:
        tls_options.check_alpn(body["alpn_protocols"])
        values["alpn_protocols"] = (body["alpn_protocols"] if body["alpn_protocols"] is not None
                                    else list(api.default_pool_alpn_protocols))
    if values.get("tls_enabled"):
        # Turning TLS on fills the configured defaults that are still unset.
        for key, default in (("tls_ciphers", api.default_pool_ciphers),
                             ("tls_versions", list(api.default_pool_tls_versions)),
                             ("alpn_protocols", list(api.default_pool_alpn_protocols))):
            if values.get(key, getattr(pool, key)) is None:
                values[key] = default
    return values


def _prepare_update(conn: Connection, req: ApiRequest, pool_id: str, body: dict[str, Any]) \
        -> Target:
    pool = common.get_row(conn, t.pool, pool_id, LABEL)
    lb = common.lock_lb(conn, pool.load_balancer_id)
    pool = common.get_row(conn, t.pool, pool_id, LABEL, lock=True)
    common.authorize(req, RESOURCE, "put", lb.project_id)
    values = _update_values(conn, req, pool, body)
    lock_pool_change(conn, lb, pool_listener_ids(conn, [pool_id])[pool_id])
    return Target(pool, lb, values)


def _prepare_delete(conn: Connection, req: ApiRequest, pool_id: str) -> Target:
    pool = common.get_row(conn, t.pool, pool_id, LABEL)
    policy = conn.execute(select(t.l7policy.c.id).where(
        t.l7policy.c.redirect_pool_id == pool_id).order_by(t.l7policy.c.created_at)).first()
    if policy is not None:
        raise Conflict(f"Pool {pool_id} is in use by L7 policy {policy.id}")
    lb = common.lock_lb(conn, pool.load_balancer_id)
    common.authorize(req, RESOURCE, "delete", lb.project_id)
    lock_pool_change(conn, lb, pool_listener_ids(conn, [pool_id])[pool_id])
    return Target(pool, lb)


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.pool,
    path="/v2/lbaas/pools", fields=FIELDS, collection=COLLECTION, render_many=render_many,
    prepare_update=_prepare_update, prepare_delete=_prepare_delete)
HANDLERS = crud.handlers(SPEC, create)
register = HANDLERS.register
OPENAPI = SPEC.openapi()
