"""Helpers every resource module shares: ids, time, project scoping, locking and quotas."""

from __future__ import annotations

import functools
import ipaddress
import uuid
from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, select, update

from lbaas.api import listing
from lbaas.api.errors import (
    BadRequest,
    Forbidden,
    ImmutableObject,
    NotFound,
    QuotaExceeded,
    hook_error,
)
from lbaas.api.http import ApiRequest, Handler, Response
from lbaas.api.policy import rule
from lbaas.domain import constants as c
from lbaas.logs import current_request_id
from lbaas.store import tables as t
from lbaas.store.listing import count, list_rows, tags_for
from lbaas.store.quota_lock import lock_project


def canonical_ip(address: str) -> str:
    """Addresses are stored and shown as sent (as upstream); equality is an address's."""
    return str(ipaddress.ip_address(address))


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


def iso(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() if value is not None else None


def text(value: str | None) -> str:
    return "" if value is None else value


def known_projects(engine: Any) -> set[str]:
    """Projects that own a load balancer or have a quota row."""
    with engine.connect() as conn:
        owners = conn.execute(select(t.load_balancer.c.project_id).where(
            t.load_balancer.c.provisioning_status != c.DELETED).distinct()).scalars()
        quotas = conn.execute(select(t.quota.c.project_id)).scalars()
        return {p for p in (*owners, *quotas) if p}


def authorize(req: ApiRequest, resource: str, verb: str, target: str | None = None) -> None:
    req.app.policy.enforce(req.context, rule(resource, verb), target)


def creation_project(req: ApiRequest, body_project: str | None) -> str:
    """The project a new top-level object belongs to (body, else the caller's)."""
    ctx = req.context
    project = body_project or ctx.project_id
    if not project:
        raise BadRequest("Validation failure: Missing project ID in request where one is "
                         "required.")
    return project


def scope_list(req: ApiRequest, resource: str, project_column: str = "project_id") \
        -> dict[str, Any]:
    """Apply upstream's project rules to a list request; returns extra filters."""
    ctx = req.context
    wanted = req.param("project_id") or req.param("tenant_id")
    policy = req.app.policy
    if policy.allowed(ctx, rule(resource, "get_all-global")):
        return {project_column: wanted} if wanted else {}
    authorize(req, resource, "get_all", ctx.project_id)
    if wanted and wanted != ctx.project_id:
        raise Forbidden()
    return {project_column: ctx.project_id}


# The statements every change runs, built once per table with their values as parameters:
# building a statement and its cache key on every request cost more than running it.
@functools.cache
def _row_by_id(table: Table, lock: bool) -> Any:
    stmt = select(table).where(table.c.id == bindparam("ident"))
    return stmt.with_for_update() if lock else stmt


@functools.cache
def _id_by_id(table: Table) -> Any:
    return select(table.c.id).where(table.c.id == bindparam("ident"))


@functools.cache
def _set_status(table: Table, touch: bool) -> Any:
    values: dict[str, Any] = {"provisioning_status": bindparam("new_status")}
    if touch:
        values["updated_at"] = bindparam("now")
    return update(table).where(table.c.id.in_(bindparam("ids", expanding=True))).values(values)


_MARK_LB_CHANGED = update(t.load_balancer).where(
    t.load_balancer.c.id == bindparam("lb_id")).values(
    provisioning_status=bindparam("new_status"), generation=t.load_balancer.c.generation + 1,
    last_request_id=bindparam("request_id"))


def get_row(conn: Connection, table: Table, ident: str, resource: str,
            lock: bool = False) -> Row[Any]:
    row = conn.execute(_row_by_id(table, lock), {"ident": ident}).first()
    if row is None or getattr(row, "provisioning_status", None) == c.DELETED:
        raise NotFound(resource, ident)
    return row


@functools.cache
def _row_type(table: Table) -> Any:
    return namedtuple(f"{table.name}_row", [col.name for col in table.columns])  # type: ignore[misc]


def inserted_row(conn: Connection, table: Table, values: dict[str, Any], resource: str) \
        -> Row[Any]:
    """The row this transaction just inserted with ``values``, as ``get_row`` would read it,
    without the statement: what was sent, else the column's Python default. A column the
    database itself fills (a server default, a computed default) makes it read the row."""
    out = []
    for name, filled, default in _insert_plan(table):
        if name in values:
            out.append(values[name])
        elif filled:
            return get_row(conn, table, values["id"], resource)
        else:
            out.append(default)
    row: Row[Any] = _row_type(table)(*out)
    return row


@functools.cache
def _insert_plan(table: Table) -> tuple[tuple[str, bool, Any], ...]:
    """Per column: its name, whether the database fills it, else its scalar default."""
    return tuple((col.name, col.server_default is not None or (
        col.default is not None and not col.default.is_scalar),
        col.default.arg if col.default is not None and col.default.is_scalar else None)
        for col in table.columns)


def new_tags(conn: Connection, resource_id: str, tags: Sequence[str] | None) -> list[str]:
    """The tags of an object created in this transaction: none to read when it was given
    none (given ones are read back, in the database's collation as every read shows them)."""
    return tags_for(conn, [resource_id])[resource_id] if tags else []


def under_parent(handler: Handler, table: Table, param: str, label: str) -> Handler:
    """``handler`` behind upstream's ``_lookup`` of the parent (pool of members, policy of
    rules): an unknown parent is a webob 404, before the body is even read."""
    @functools.wraps(handler)
    async def routed(req: ApiRequest) -> Response:
        ident = req.path_params[param]
        with req.app.engine.connect() as conn:
            found = conn.execute(_id_by_id(table), {"ident": ident}).first()
        if found is None:
            raise hook_error(404, f"{label} {ident} not found.")
        return await handler(req)

    return routed


def parent_row(conn: Connection, table: Table, ident: str, label: str) -> Row[Any]:
    """``under_parent``'s lookup inside a handler's own transaction (one statement and one
    connection fewer): the parent's row, or the same webob 404 when there is none."""
    row = conn.execute(_row_by_id(table, False), {"ident": ident}).first()
    if row is None:
        raise hook_error(404, f"{label} {ident} not found.")
    return row


def lock_lb(conn: Connection, lb_id: str) -> Row[Any]:
    """Row-lock the load balancer (PostgreSQL/MariaDB) so check-and-set is atomic."""
    return get_row(conn, t.load_balancer, lb_id, "Load Balancer", lock=True)


def require_lb_mutable(lb: Row[Any]) -> None:
    if lb.provisioning_status != c.ACTIVE:
        raise ImmutableObject("Load Balancer", lb.id)


def set_status(conn: Connection, table: Table, ids: Sequence[str], status: str,
               touch: bool = True) -> None:
    if not ids:
        return
    params: dict[str, Any] = {"ids": list(ids), "new_status": status}
    if touch:
        params["now"] = utcnow()
    conn.execute(_set_status(table, touch), params)


def mark_lb_changed(conn: Connection, lb_id: str, status: str = c.PENDING_UPDATE) -> None:
    conn.execute(_MARK_LB_CHANGED, {"lb_id": lb_id, "new_status": status,
                                    "request_id": current_request_id()})


QUOTA_COLUMNS = {
    "load_balancer": (t.load_balancer, "Load Balancer"),
    "listener": (t.listener, "Listener"),
    "pool": (t.pool, "Pool"),
    "health_monitor": (t.health_monitor, "Health Monitor"),
    "member": (t.member, "Member"),
    "l7policy": (t.l7policy, "L7 Policy"),
    "l7rule": (t.l7rule, "L7 Rule"),
}


def quota_limit(conn: Connection, req: ApiRequest, project_id: str, key: str) -> int:
    row = conn.execute(select(t.quota).where(t.quota.c.project_id == project_id)).first()
    value = getattr(row, key) if row is not None else None
    if value is None:
        value = getattr(req.app.settings.quotas, f"default_{key}_quota")
    return int(value)


def check_quota(conn: Connection, req: ApiRequest, project_id: str, key: str,
                adding: int = 1) -> None:
    """403 when ``adding`` more objects of ``key`` would exceed the project's quota."""
    if req.context.noauth or adding <= 0:
        return
    limit = quota_limit(conn, req, project_id, key)
    if limit < 0:
        return
    lock_project(conn, project_id)  # concurrent creates count one after the other
    table, label = QUOTA_COLUMNS[key]
    where = [table.c.project_id == project_id]
    if table is t.load_balancer:
        where.append(table.c.provisioning_status != c.DELETED)
    if count(conn, table, *where) + adding > limit:
        raise QuotaExceeded(label)


def list_response(req: ApiRequest, coll: listing.Collection, resource: str,
                  render_many: Callable[[Connection, list[Any]], list[dict[str, Any]]],
                  extra_where: Sequence[Any] = (), project_column: str = "project_id",
                  scoped: bool = True) -> Response:
    """One page of ``coll``; ``scoped`` applies the project rules (children authorized
    through their parent, such as members, are not)."""
    state = req.app
    with state.engine.connect() as conn:
        q = listing.build_query(conn, req, coll, state.settings.api.pagination_max_limit)
        if scoped:
            scope = scope_list(req, resource, project_column)
            q.filters.pop("project_id", None)
            q.filters.update(scope)
        q.where.extend(extra_where)
        rows = list_rows(conn, coll.table, q)
        items = render_many(conn, rows)
    wanted = listing.requested_fields(req)
    body = {
        coll.plural: [listing.select_fields(i, wanted) for i in items],
        coll.links_key: listing.links(req, q, rows, state.settings.api.api_base_uri),
    }
    return Response(200, body)


def one_response(req: ApiRequest, key: str, obj: dict[str, Any], status: int = 200) -> Response:
    return Response(status, {key: listing.select_fields(obj, listing.requested_fields(req))})


def tags_of(conn: Connection, rows: Sequence[Any]) -> dict[str, list[str]]:
    return tags_for(conn, [r.id for r in rows])
