"""Health monitors: one per pool, type checked against the pool protocol (§8.2).

Validation is split from storage so the single-call (graph) create can reuse it:
``prepare_hm`` turns a parsed body plus the pool protocol into column values, ``insert_hm``
stores them. Members follow upstream: a pool gaining a monitor turns its ``NO_MONITOR``
members ``OFFLINE`` and losing it turns ``OFFLINE`` members back to ``NO_MONITOR``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select, update

from lbaas.api import common, listing
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
    Enum,
    Field,
    Int,
    String,
    Uuid,
    name_field,
    parse_envelope,
    refuse_unless,
)
from lbaas.domain import constants as c
from lbaas.render import validate
from lbaas.store import raw_insert
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, tags_for

RESOURCE = "healthmonitor"
LABEL = "Health Monitor"
HTTP_TYPES = frozenset({"HTTP", "HTTPS"})
HTTP_FIELDS = ("http_method", "url_path", "expected_codes")
DEFAULT_METHOD = "GET"
DEFAULT_URL_PATH = "/"
DEFAULT_EXPECTED_CODES = "200"
DEFAULT_MAX_RETRIES_DOWN = 3

FIELDS = (
    name_field(), ADMIN_STATE_UP, PROJECT_ID, TAGS,
    Field("pool_id", Uuid(), required=True, on_update=False),
    Field("type", Enum(c.HEALTH_MONITOR_TYPES), required=True, on_update=False),
    # HAProxy's timers stop at 2**31-1 ms: larger delays and timeouts overflow.
    Field("delay", Int(minimum=0, maximum=validate.MAX_TIMER_S), required=True),
    Field("timeout", Int(minimum=0, maximum=validate.MAX_TIMER_S), required=True),
    Field("max_retries", Int(minimum=1, maximum=10), required=True),
    Field("max_retries_down", Int(minimum=1, maximum=10), default=DEFAULT_MAX_RETRIES_DOWN),
    Field("http_method", Enum(c.HTTP_METHODS)),
    Field("url_path", String(2048), check=refuse_unless(validate.url_path_error)),
    Field("expected_codes", String(64), check=refuse_unless(validate.expected_codes_error)),
    Field("http_version", Enum(c.HTTP_VERSIONS)),
    Field("domain_name", String(255, min_length=1),
          check=refuse_unless(validate.domain_name_error)),
)

COLLECTION = listing.Collection(t.health_monitor, "healthmonitors", "healthmonitors_links")


# rendering --------------------------------------------------------------------------------------
def _version(value: float | None) -> float | None:
    # MariaDB FLOAT is single precision: 1.1 comes back as 1.100000023841858.
    return None if value is None else round(float(value), 1)


def render(row: Row[Any], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": common.text(row.name),
        "type": row.type,
        "delay": row.delay,
        "timeout": row.timeout,
        "max_retries": row.max_retries,
        "max_retries_down": row.max_retries_down,
        "http_method": row.http_method,
        "url_path": row.url_path,
        "expected_codes": row.expected_codes,
        "admin_state_up": row.admin_state_up,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "pools": [{"id": row.pool_id}],
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "tags": tags,
        "http_version": _version(row.http_version),
        "domain_name": row.domain_name,
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    tags = tags_for(conn, [r.id for r in rows])
    return [render(r, tags[r.id]) for r in rows]


# validation -------------------------------------------------------------------------------------
def check_type_for_pool(req: ApiRequest, hm_type: str, delay: int, pool_protocol: str) -> None:
    """§8.2: UDP/SCTP pools take UDP-CONNECT/SCTP/TCP/HTTP; other pools never the first two."""
    if pool_protocol in c.UDP_LIKE:
        allowed = ("UDP-CONNECT", "SCTP", "TCP", "HTTP")
        if hm_type not in allowed:
            raise ValidationFailure(
                f"The associated pool protocol is {pool_protocol}, so only a "
                f"{'/'.join(allowed)} health monitor is supported.")
    elif hm_type in ("UDP-CONNECT", "SCTP"):
        raise ValidationFailure(f"The {hm_type} type is only supported for pools of type "
                                "UDP/SCTP.")
    check_udp_delay(req, hm_type, delay)


def check_udp_delay(req: ApiRequest, hm_type: str, delay: int) -> None:
    minimum = req.app.settings.api.udp_connect_min_interval_health_monitor
    if hm_type == "UDP-CONNECT" and delay < minimum:
        raise ValidationFailure(
            f"The request delay value {delay} should be larger than {minimum} for "
            "UDP-CONNECT health monitor type.")


def _check_domain(http_version: float | None, domain_name: str | None) -> None:
    if domain_name and not http_version:
        raise ValidationFailure("'http_version' must be specified when 'domain_name' is "
                                "provided.")
    if domain_name and http_version is not None and http_version < 1.1:
        raise BadRequest(f"http_version {http_version} is not a valid option for health "
                         "monitors HTTP 1.1 domain name health check")


def check_ping_allowed(req: ApiRequest, hm_type: str) -> None:
    if hm_type == "PING" and not req.app.settings.api.allow_ping_health_monitors:
        raise BadRequest("The selected type is not allowed in this deployment: PING")


def prepare_hm(req: ApiRequest, body: dict[str, Any], pool_protocol: str) -> dict[str, Any]:
    """Validate a parsed create body against its pool; return the column values to store."""
    hm_type = body["type"]
    check_ping_allowed(req, hm_type)
    check_type_for_pool(req, hm_type, body["delay"], pool_protocol)
    values = {k: body.get(k) for k in ("name", "type", "delay", "timeout", "max_retries",
                                      "http_version", "domain_name", *HTTP_FIELDS)}
    values["admin_state_up"] = bool(body.get("admin_state_up"))
    values["max_retries_down"] = body.get("max_retries_down") or DEFAULT_MAX_RETRIES_DOWN
    if hm_type in HTTP_TYPES:
        values["http_method"] = values["http_method"] or DEFAULT_METHOD
        values["url_path"] = values["url_path"] or DEFAULT_URL_PATH
        values["expected_codes"] = values["expected_codes"] or DEFAULT_EXPECTED_CODES
    else:
        for key in HTTP_FIELDS:
            if values[key]:
                raise BadRequest(f"{key} is not a valid option for health monitors of type "
                                 f"{hm_type}")
    _check_domain(values["http_version"], values["domain_name"])
    return values


_POOL_MONITOR = select(t.health_monitor.c.id).where(
    t.health_monitor.c.pool_id == bindparam("pool_id"))
_MEMBER_STATUS = update(t.member).where(
    t.member.c.pool_id == bindparam("of_pool"),
    t.member.c.operating_status == bindparam("old")).values(operating_status=bindparam("new"))




def insert_hm(conn: Connection, values: dict[str, Any], pool_id: str, project_id: str,
              now: datetime, tags: list[str] | None, new_pool: bool = False) -> str:
    """Store a prepared monitor (``PENDING_CREATE``) and take the pool's members off NO_MONITOR.
    ``new_pool``: the pool was inserted in this transaction, without members or monitor."""
    return str(insert_hm_row(conn, values, pool_id, project_id, now, tags, new_pool)["id"])


def insert_hm_row(conn: Connection, values: dict[str, Any], pool_id: str, project_id: str,
                  now: datetime, tags: list[str] | None, new_pool: bool = False) \
        -> dict[str, Any]:
    """``insert_hm``, returning the row's values."""
    if not new_pool and conn.execute(_POOL_MONITOR, {"pool_id": pool_id}).first() is not None:
        raise Conflict("This pool already has a health monitor")
    row = {**values, "id": common.new_id(), "project_id": project_id, "pool_id": pool_id,
           "provisioning_status": c.PENDING_CREATE, "operating_status": c.OFFLINE,
           "created_at": now}
    raw_insert.insert(conn, t.health_monitor, row)
    add_tags(conn, row["id"], tags)
    if not new_pool:
        _member_status(conn, pool_id, c.NO_MONITOR, c.OFFLINE)
    return row


def _member_status(conn: Connection, pool_id: str, old: str, new: str) -> None:
    conn.execute(_MEMBER_STATUS, {"of_pool": pool_id, "old": old, "new": new})


# locking ----------------------------------------------------------------------------------------
_POOL_LISTENERS = select(t.listener.c.id).where(or_(
    t.listener.c.default_pool_id == bindparam("pool_id"),
    t.listener.c.id.in_(select(t.l7policy.c.listener_id).where(
        t.l7policy.c.redirect_pool_id == bindparam("pool_id")))))


def pool_listener_ids(conn: Connection, pool_id: str) -> list[str]:
    """Listeners using the pool as default pool or as an L7 redirect target."""
    return [r.id for r in conn.execute(_POOL_LISTENERS, {"pool_id": pool_id})]


def lock_pool_parents(conn: Connection, pool_id: str, lb: Row[Any] | None = None) -> Row[Any]:
    """§6.3 for monitors: pool and LB ACTIVE, then LB, pool and its listeners PENDING_UPDATE.
    ``lb``: the pool's load balancer, already locked in this transaction."""
    if lb is None:
        pool = common.get_row(conn, t.pool, pool_id, "Pool")
        lb = common.lock_lb(conn, pool.load_balancer_id)
    pool = common.get_row(conn, t.pool, pool_id, "Pool")  # re-read under the LB lock
    if pool.provisioning_status != c.ACTIVE:
        raise ImmutableObject("Pool", pool_id)
    common.require_lb_mutable(lb)
    common.mark_lb_changed(conn, lb.id)
    common.set_status(conn, t.listener, pool_listener_ids(conn, pool_id), c.PENDING_UPDATE)
    common.set_status(conn, t.pool, [pool_id], c.PENDING_UPDATE)
    return lb


def _project_of(conn: Connection, lb_id: str) -> str:
    return common.get_row(conn, t.load_balancer, lb_id, "Load Balancer").project_id


# handlers ---------------------------------------------------------------------------------------
async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), RESOURCE, FIELDS, "create")
    state = req.app
    now = common.utcnow()
    check_ping_allowed(req, body["type"])  # upstream checks this before loading the pool
    with state.engine.begin() as conn:
        pool = common.get_row(conn, t.pool, body["pool_id"], "Pool")
        lb = common.lock_lb(conn, pool.load_balancer_id)  # its row is the project's too
        project_id = lb.project_id
        common.authorize(req, RESOURCE, "post", project_id)
        values = prepare_hm(req, body, pool.protocol)
        common.check_quota(conn, req, project_id, "health_monitor")
        lock_pool_parents(conn, pool.id, lb)
        row = insert_hm_row(conn, values, pool.id, project_id, now, body.get("tags"))
        view = render(common.inserted_row(conn, t.health_monitor, row, LABEL),
                      common.new_tags(conn, row["id"], body.get("tags")))
    state.notify(lb.id)
    return Response(201, {RESOURCE: view})


def update_values(req: ApiRequest, hm: Row[Any], body: dict[str, Any], pool_protocol: str) \
        -> dict[str, Any]:
    """Merge an update body into the stored monitor (upstream's PUT rules)."""
    if hm.type not in HTTP_TYPES:
        for key in HTTP_FIELDS:
            if key in body:
                raise BadRequest(f"{key} is not a valid option for health monitors of type "
                                 f"{hm.type}")
    for key in ("delay", "max_retries", "timeout"):
        if key in body and body[key] is None:
            raise BadRequest(f"None is not a valid option for {key}")
    version = body["http_version"] if "http_version" in body else _version(hm.http_version)
    domain = body["domain_name"] if "domain_name" in body else hm.domain_name
    _check_domain(version, domain)
    if pool_protocol in c.UDP_LIKE:
        check_udp_delay(req, hm.type, body.get("delay", hm.delay))
    values: dict[str, Any] = {}
    for key in ("name", "delay", "timeout", "max_retries", "http_version", "domain_name"):
        if key in body:
            values[key] = body[key]
    if "admin_state_up" in body:
        values["admin_state_up"] = bool(body["admin_state_up"])
    defaults = {"http_method": DEFAULT_METHOD, "url_path": DEFAULT_URL_PATH,
                "expected_codes": DEFAULT_EXPECTED_CODES,
                "max_retries_down": DEFAULT_MAX_RETRIES_DOWN}
    for key, default in defaults.items():
        if key in body:
            values[key] = default if body[key] is None else body[key]
    return values


def _target(conn: Connection, req: ApiRequest, hm_id: str, verb: str) -> tuple[Row[Any], Row[Any]]:
    """The monitor and its pool, once the caller may ``verb`` it."""
    hm = common.get_row(conn, t.health_monitor, hm_id, LABEL)
    pool = common.get_row(conn, t.pool, hm.pool_id, "Pool")
    common.authorize(req, RESOURCE, verb, _project_of(conn, pool.load_balancer_id))
    return hm, pool


def _prepare_update(conn: Connection, req: ApiRequest, hm_id: str, body: dict[str, Any]) \
        -> Target:
    hm, pool = _target(conn, req, hm_id, "put")
    values = update_values(req, hm, body, pool.protocol)
    return Target(hm, lock_pool_parents(conn, pool.id), values)


def _prepare_delete(conn: Connection, req: ApiRequest, hm_id: str) -> Target:
    hm, pool = _target(conn, req, hm_id, "delete")
    return Target(hm, lock_pool_parents(conn, pool.id))


def _after_delete(conn: Connection, target: Target) -> None:
    _member_status(conn, target.row.pool_id, c.OFFLINE, c.NO_MONITOR)


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.health_monitor,
    path="/v2/lbaas/healthmonitors", fields=FIELDS, collection=COLLECTION,
    render_many=render_many, prepare_update=_prepare_update, prepare_delete=_prepare_delete,
    after_delete=_after_delete)
HANDLERS = crud.handlers(SPEC, create)
register = HANDLERS.register
OPENAPI = SPEC.openapi()
