"""Members of a pool: CRUD plus the batch "desired set" update.

Members are keyed by (address, protocol_port) inside their pool. Every change needs the pool and
its load balancer ACTIVE and puts the LB, the pool and the pool's listeners in PENDING_UPDATE.
Creation is split into ``prepare_member`` / ``check_member_provider`` / ``insert_member`` so the
single-call graph create can reuse it. The batch update computes the real difference first, so a
request that changes nothing locks nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, select, update

from lbaas.api import common, listing
from lbaas.api.errors import (
    BadRequest,
    Conflict,
    ImmutableObject,
    InvalidInput,
    NotFound,
    UnknownAttribute,
    provider_unsupported_option,
)
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud, member_legs, pools
from lbaas.api.resources.networking import access
from lbaas.api.resources.spec import Parent, Resource, Target
from lbaas.api.resources.vips import known_ids
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    MAX_TAGS,
    PROJECT_ID,
    Bool,
    Field,
    Int,
    IpAddress,
    ListOf,
    String,
    Uuid,
    name_field,
    object_openapi,
    parse_bool,
    parse_envelope,
    parse_object,
)
from lbaas.domain import constants as c
from lbaas.store import raw_insert
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, set_tags, tags_for

RESOURCE = "member"
LABEL = "Member"
BATCH_ARGUMENT = "members_"  # upstream's WSME argument name in "Unknown attribute" messages

PORT = Int(minimum=1, maximum=65535)

# name and tags have no default: a batch update leaves them alone when omitted.
FIELDS = (
    name_field(), ADMIN_STATE_UP, PROJECT_ID,
    Field("address", IpAddress(), required=True, nullable=False, on_update=False),
    Field("protocol_port", PORT, required=True, nullable=False, on_update=False),
    Field("weight", Int(minimum=0, maximum=256), default=1),
    Field("backup", Bool(), default=False),
    Field("subnet_id", Uuid(), on_update=False),
    Field("monitor_address", IpAddress(), default=None),
    Field("monitor_port", PORT, default=None),
    Field("request_sriov", Bool(), default=False, on_update=False),
    Field("tags", ListOf(String(255), max_items=MAX_TAGS)),
)

# Attributes a batch update rewrites on existing members (create defaults applied).
BATCH_RESET = ("admin_state_up", "weight", "backup", "monitor_address", "monitor_port")

COLLECTION = listing.Collection(t.member, "members", "members_links")


def render_member(row: Row[Any], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": common.text(row.name),
        "operating_status": row.operating_status,
        "provisioning_status": row.provisioning_status,
        "admin_state_up": row.admin_state_up,
        "address": row.address,
        "protocol_port": row.protocol_port,
        "weight": row.weight,
        "backup": bool(row.backup),
        "subnet_id": row.subnet_id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "monitor_address": row.monitor_address,
        "monitor_port": row.monitor_port,
        "tags": tags,
        "vnic_type": row.vnic_type or c.VNIC_NORMAL,
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    tags = tags_for(conn, [r.id for r in rows])
    return [render_member(r, tags[r.id]) for r in rows]


# -- validation --------------------------------------------------------------------------------

def check_not_reserved(req: ApiRequest, address: str) -> None:
    ip = ipaddress.ip_address(address)
    for reserved in req.app.settings.networking.reserved_ips:
        if ip == ipaddress.ip_address(reserved):
            raise BadRequest(f"{ip.exploded.upper()} is not a valid option for member address")


def _flavor_allows_sriov(conn: Connection, lb: Row[Any]) -> bool:
    if not lb.flavor_id:
        return False
    row = conn.execute(select(t.flavor_profile.c.flavor_data).join(
        t.flavor, t.flavor.c.flavor_profile_id == t.flavor_profile.c.id)
        .where(t.flavor.c.id == lb.flavor_id)).first()
    if row is None:
        return False
    try:
        data = json.loads(row.flavor_data)
    except ValueError:
        return False
    return isinstance(data, dict) and parse_bool(data.get("allow_member_sriov")) is True


def validate_new_member(conn: Connection, req: ApiRequest, lb: Row[Any],
                        body: dict[str, Any]) -> None:
    """The checks a member being created must pass (single, batch and graph create)."""
    check_not_reserved(req, body["address"])
    # usable subnet (noop: made-up ids are nobody's), not an operator address
    access.check_member(conn, req, known_ids(conn, req, body))
    if body.get("request_sriov") and not _flavor_allows_sriov(conn, lb):
        raise BadRequest("The load balancer flavor does not allow SR-IOV member ports.")


_POOL_MONITOR = select(t.health_monitor.c.id).where(
    t.health_monitor.c.pool_id == bindparam("pool_id"))
_SAME_PORT = select(t.member.c.address).where(and_(
    t.member.c.pool_id == bindparam("pool_id"),
    t.member.c.protocol_port == bindparam("port"))).with_for_update()


def prepare_member(conn: Connection, req: ApiRequest, lb: Row[Any], pool_id: str,
                   body: dict[str, Any], now: Any, has_monitor: bool | None = None) \
        -> dict[str, Any]:
    """Validate a parsed create body; return the row's values (PENDING_CREATE).

    ``has_monitor`` None means "look it up" (the pool exists already)."""
    validate_new_member(conn, req, lb, body)
    if has_monitor is None:
        has_monitor = conn.execute(_POOL_MONITOR, {"pool_id": pool_id}).first() is not None
    admin = body.get("admin_state_up", True)
    return {
        "id": common.new_id(), "project_id": lb.project_id, "pool_id": pool_id,
        "name": body.get("name"), "provisioning_status": c.PENDING_CREATE,
        "operating_status": c.OFFLINE if has_monitor else c.NO_MONITOR,
        "admin_state_up": bool(admin), "address": body["address"],
        "protocol_port": body["protocol_port"], "weight": _weight(body.get("weight", 1)),
        "backup": bool(body.get("backup")), "subnet_id": body.get("subnet_id"),
        "monitor_address": body.get("monitor_address"),
        "monitor_port": body.get("monitor_port"),
        "vnic_type": c.VNIC_DIRECT if body.get("request_sriov") else c.VNIC_NORMAL,
        "created_at": now,
    }


def _weight(value: int | None) -> int:
    return 1 if value is None else value


def _vip_families(lb: Row[Any]) -> set[int]:
    addresses = [lb.vip_address, *[v.get("ip_address") for v in lb.additional_vips or []]]
    return {ipaddress.ip_address(a).version for a in addresses if a}


def check_member_provider(conn: Connection, lb: Row[Any], pool: Row[Any],
                          addresses: Sequence[str]) -> None:
    """Amphora (LVS) cannot mix IP families between VIP and members of UDP/SCTP pools; as
    upstream 19.0.0 the check runs only through the pool's listeners, so a pool that has none
    yet takes members of either family."""
    if not c.is_amphora_provider(lb.provider) or pool.protocol not in c.UDP_LIKE \
            or not pools.pool_listener_ids(conn, [pool.id])[pool.id]:
        return
    pool_protocol = pool.protocol
    families = _vip_families(lb)
    for address in addresses:
        if families and ipaddress.ip_address(address).version not in families:
            raise provider_unsupported_option(
                "amphora", "This provider doesn't support mixing IPv4 and IPv6 addresses for "
                f"its VIP and members in {pool_protocol} load balancers.")


def _key(address: str, protocol_port: int) -> tuple[str, int]:
    """A member's identity in its pool: addresses are stored as sent, compared as addresses."""
    return common.canonical_ip(address), protocol_port




def insert_member(conn: Connection, values: dict[str, Any], tags: Sequence[str] | None,
                  taken: set[tuple[str, int]] | None = None) -> None:
    """Insert one member; 409 if its (address, protocol_port) is taken in the pool.
    ``taken``: for a pool inserted in this transaction, the keys of the members inserted so
    far (the only ones it has), kept here instead of read back."""
    wanted = common.canonical_ip(values["address"])
    if taken is not None:
        key = (wanted, values["protocol_port"])
        clash = key in taken
        taken.add(key)
    else:
        same_port = conn.execute(_SAME_PORT, {"pool_id": values["pool_id"],
                                              "port": values["protocol_port"]}).scalars()
        clash = any(common.canonical_ip(address) == wanted for address in same_port)
    if clash:
        raise Conflict(f"Another member on this pool is already using ip {values['address']} "
                       f"on protocol_port {values['protocol_port']}")
    raw_insert.insert(conn, t.member, values)
    add_tags(conn, values["id"], tags)


# -- locking -----------------------------------------------------------------------------------

def lock_member_change(conn: Connection, lb: Row[Any], pool: Row[Any]) -> None:
    """409 unless pool and LB are ACTIVE; then LB, pool and its listeners -> PENDING_UPDATE."""
    if pool.provisioning_status != c.ACTIVE:
        raise ImmutableObject(pools.LABEL, pool.id)
    common.require_lb_mutable(lb)
    common.mark_lb_changed(conn, lb.id)
    common.set_status(conn, t.pool, [pool.id], c.PENDING_UPDATE, touch=False)
    listener_ids = pools.pool_listener_ids(conn, [pool.id])[pool.id]
    common.set_status(conn, t.listener, listener_ids, c.PENDING_UPDATE, touch=False)


def _pool_and_lb(conn: Connection, pool_id: str, pool: Row[Any] | None = None) \
        -> tuple[Row[Any], Row[Any]]:
    """Lock the pool's load balancer, then re-read the pool with a locking read: under
    MariaDB's repeatable read only locking reads see what was committed meanwhile.
    ``pool``: its row as read already in this transaction."""
    if pool is None or pool.provisioning_status == c.DELETED:
        pool = common.get_row(conn, t.pool, pool_id, pools.LABEL)
    lb = common.lock_lb(conn, pool.load_balancer_id)
    return common.get_row(conn, t.pool, pool_id, pools.LABEL, lock=True), lb


def _member_of(conn: Connection, pool_id: str, member_id: str) -> Row[Any]:
    row = common.get_row(conn, t.member, member_id, LABEL)
    if row.pool_id != pool_id:
        raise NotFound(LABEL, member_id)
    return row


# -- handlers ----------------------------------------------------------------------------------

async def create(req: ApiRequest) -> Response:
    state = req.app
    now = common.utcnow()
    pool_id = req.path_params["pool_id"]
    with state.engine.begin() as conn:
        # under_parent's 404 first (before the body is read), on this transaction's connection
        parent = common.parent_row(conn, t.pool, pool_id, pools.LABEL)
        body = parse_envelope(req.json(), "member", FIELDS, "create")
        pool, lb = _pool_and_lb(conn, pool_id, parent)
        common.authorize(req, RESOURCE, "post", lb.project_id)
        values = prepare_member(conn, req, lb, pool.id, body, now)
        common.check_quota(conn, req, lb.project_id, "member")
        member_legs.check(conn, req, lb, [values["subnet_id"]])
        lock_member_change(conn, lb, pool)
        check_member_provider(conn, lb, pool, [values["address"]])
        insert_member(conn, values, body.get("tags"))
        view = render_member(common.inserted_row(conn, t.member, values, LABEL),
                             common.new_tags(conn, values["id"], body.get("tags")))
    state.notify(lb.id)
    return Response(201, {"member": view})


async def get_all(req: ApiRequest) -> Response:
    pool_id = req.path_params["pool_id"]
    with req.app.engine.connect() as conn:
        pool = common.get_row(conn, t.pool, pool_id, pools.LABEL)
    common.authorize(req, RESOURCE, "get_all", pool.project_id)
    return common.list_response(req, COLLECTION, RESOURCE, render_many,
                                [t.member.c.pool_id == pool_id], scoped=False)


def _find(conn: Connection, req: ApiRequest) -> Row[Any]:
    pool = common.get_row(conn, t.pool, req.path_params["pool_id"], pools.LABEL)
    return _member_of(conn, pool.id, req.path_params["id"])


def _update_values(body: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = body["name"]
    if "admin_state_up" in body:
        values["admin_state_up"] = bool(body["admin_state_up"])
    if "weight" in body:
        values["weight"] = _weight(body["weight"])
    if "backup" in body:
        values["backup"] = bool(body["backup"])
    for key in ("monitor_address", "monitor_port"):
        if key in body:
            values[key] = body[key]
    return values


def _target(conn: Connection, req: ApiRequest, member_id: str, verb: str) \
        -> tuple[Row[Any], Row[Any], Row[Any]]:
    """The member, its pool and its locked load balancer, once the caller may ``verb`` it."""
    pool, lb = _pool_and_lb(conn, req.path_params["pool_id"])
    member = _member_of(conn, pool.id, member_id)
    common.authorize(req, RESOURCE, verb, lb.project_id)
    return member, pool, lb


def _prepare_update(conn: Connection, req: ApiRequest, member_id: str, body: dict[str, Any]) \
        -> Target:
    member, pool, lb = _target(conn, req, member_id, "put")
    access.check_member(conn, req, known_ids(conn, req, body))
    lock_member_change(conn, lb, pool)
    return Target(member, lb, _update_values(body))


def _prepare_delete(conn: Connection, req: ApiRequest, member_id: str) -> Target:
    member, pool, lb = _target(conn, req, member_id, "delete")
    lock_member_change(conn, lb, pool)
    return Target(member, lb)


# -- batch update ------------------------------------------------------------------------------

def parse_batch(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("members"), list):
        raise InvalidInput("members", raw, "Mandatory field missing.")
    extra = [k for k in raw if k != "members"]
    if extra:
        raise UnknownAttribute(extra, BATCH_ARGUMENT)
    try:
        members = [parse_object("members", m, FIELDS, "create") for m in raw["members"]]
    except UnknownAttribute as exc:
        exc.add_fieldname("members")
        exc.add_fieldname(BATCH_ARGUMENT)
        raise
    seen: set[tuple[str, int]] = set()
    for m in members:
        key = _key(m["address"], m["protocol_port"])
        if key in seen:
            raise BadRequest("Validation failure: Member must be updated only once in the "
                             "same request.")
        seen.add(key)
    return members


def _batch_changes(row: Row[Any], body: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    """Columns of an existing member the batch body changes (omitted attributes reset)."""
    wanted: dict[str, Any] = {
        "admin_state_up": bool(body["admin_state_up"]), "weight": _weight(body["weight"]),
        "backup": bool(body["backup"]), "monitor_address": body["monitor_address"],
        "monitor_port": body["monitor_port"],
    }
    if "name" in body:
        wanted["name"] = body["name"]
    changes = {k: v for k, v in wanted.items() if getattr(row, k) != v}
    if body.get("tags") is not None and sorted(set(body["tags"])) != tags:
        changes["tags"] = body["tags"]
    return changes


async def batch_update(req: ApiRequest) -> Response:
    members = parse_batch(req.json())
    additive = parse_bool(req.param("additive_only") or "false") is True
    state = req.app
    now = common.utcnow()
    with state.engine.begin() as conn:
        pool, lb = _pool_and_lb(conn, req.path_params["pool_id"])
        for verb in ("post", "put") if additive else ("post", "put", "delete"):
            common.authorize(req, RESOURCE, verb, lb.project_id)
        existing = {_key(r.address, r.protocol_port): r for r in conn.execute(
            select(t.member).where(t.member.c.pool_id == pool.id).with_for_update())}
        old_tags = tags_for(conn, [r.id for r in existing.values()])
        creates: list[dict[str, Any]] = []
        updates: list[tuple[Row[Any], dict[str, Any]]] = []
        for body in members:
            access.check_member(conn, req, known_ids(conn, req, body))
            row = existing.get(_key(body["address"], body["protocol_port"]))
            if row is None:
                creates.append(body)
                continue
            changes = _batch_changes(row, body, old_tags[row.id])
            if changes:
                updates.append((row, changes))
        wanted_keys = {_key(m["address"], m["protocol_port"]) for m in members}
        deletes = [] if additive else [r for k, r in existing.items() if k not in wanted_keys]
        has_monitor = conn.execute(select(t.health_monitor.c.id).where(
            t.health_monitor.c.pool_id == pool.id)).first() is not None
        new_rows = [(prepare_member(conn, req, lb, pool.id, m, now, has_monitor), m.get("tags"))
                    for m in creates]
        if not (new_rows or updates or deletes):
            return Response(202)
        common.check_quota(conn, req, lb.project_id, "member", len(new_rows) - len(deletes))
        member_legs.check(conn, req, lb, [v["subnet_id"] for v, _ in new_rows])
        lock_member_change(conn, lb, pool)
        check_member_provider(conn, lb, pool, [v["address"] for v, _ in new_rows])
        for values, tags in new_rows:
            insert_member(conn, values, tags)
        for row, changes in updates:
            tags = changes.pop("tags", None)
            if tags is not None:
                set_tags(conn, row.id, tags)
            conn.execute(update(t.member).where(t.member.c.id == row.id).values(
                provisioning_status=c.PENDING_UPDATE, updated_at=now, **changes))
        common.set_status(conn, t.member, [r.id for r in deletes], c.PENDING_DELETE)
    state.notify(lb.id)
    return Response(202)


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.member,
    path="/v2/lbaas/pools/{pool_id}/members", fields=FIELDS, collection=COLLECTION,
    render_many=render_many, parent=Parent(t.pool, "pool_id", pools.LABEL, wraps_create=False),
    find=_find, prepare_update=_prepare_update, prepare_delete=_prepare_delete,
    openapi_extra={"batch": {
        "type": "object",
        "properties": {"members": {"type": "array",
                                   "items": object_openapi(FIELDS, "create")}},
        "required": ["members"],
        "additionalProperties": False,
    }})
HANDLERS = crud.handlers(SPEC, create, get_all_=get_all,
                         collection_routes=[("PUT", "", batch_update)])
register = HANDLERS.register
OPENAPI = SPEC.openapi()
