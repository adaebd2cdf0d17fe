"""Amphorae (admin): list/show, delete of failed ones, failover, config re-push and statistics.

Key choice: the API never touches compute itself. Failover flags the amphora and bumps the
load balancer's generation (``PENDING_UPDATE``) so the reconciler replaces it; config clears the
amphora's active digest so the reconciler pushes the bundle again. An amphora in ``ERROR`` has
no working compute behind it in this design, so its delete is finished here (``DELETED``).
``DELETED`` rows stay for housekeeping but are invisible, as upstream.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select, update

from lbaas.api import common, listing
from lbaas.api.errors import ImmutableObject, NotFound
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources import providers
from lbaas.api.resources.loadbalancer_cascade import request_failover
from lbaas.domain import constants as c
from lbaas.logs import current_request_id
from lbaas.store import tables as t

RESOURCE = "amphora"
LABEL = "Amphora"
AMP = t.amphora

API_FIELDS = (
    "id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip", "vrrp_port_id",
    "ha_port_id", "cert_expiration", "cert_busy", "role", "status", "vrrp_interface", "vrrp_id",
    "vrrp_priority", "cached_zone", "created_at", "updated_at", "image_id", "compute_flavor",
)
COLUMNS = {"loadbalancer_id": "load_balancer_id"}  # API name -> column, where they differ
COLLECTION = listing.Collection(
    AMP, "amphorae", "amphorae_links", renames=COLUMNS, has_tags=False,
    hidden=frozenset({"active_digest", "last_heartbeat", "heartbeat_seq", "failover_requested"}),
    extra_filters=frozenset({"project_id", "tenant_id"}))
DATES = frozenset({"cert_expiration", "created_at", "updated_at"})


def render(row: Row[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in API_FIELDS:
        value = getattr(row, COLUMNS.get(name, name))
        out[name] = common.iso(value) if name in DATES else value
    return out


def render_many(_conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    return [render(r) for r in rows]


def load(conn: Connection, ident: str, lock: bool = False) -> Row[Any]:
    stmt = select(AMP).where(AMP.c.id == ident)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None or row.status == c.DELETED:
        raise NotFound(LABEL, ident)
    return row


def lb_project(conn: Connection, amp: Row[Any]) -> str | None:
    if amp.load_balancer_id is None:
        return None
    return conn.execute(select(t.load_balancer.c.project_id).where(
        t.load_balancer.c.id == amp.load_balancer_id)).scalar()


def reconcile_later(conn: Connection, lb_id: str | None) -> None:
    """Bump the LB's generation without touching its status: the periodic resync then
    reconciles it even if the notification is lost (nothing the user asked for changed)."""
    if lb_id is not None:
        lb = t.load_balancer
        conn.execute(update(lb).where(lb.c.id == lb_id).values(
            generation=lb.c.generation + 1, last_request_id=current_request_id()))


async def get_all(req: ApiRequest) -> Response:
    """List amphorae (project_id filters on the owning load balancer's project)."""
    common.authorize(req, RESOURCE, "get_all", req.context.project_id)
    where = [AMP.c.status != c.DELETED]
    project = req.param("project_id") or req.param("tenant_id")
    if project:
        lbs = select(t.load_balancer.c.id).where(t.load_balancer.c.project_id == project)
        where.append(AMP.c.load_balancer_id.in_(lbs))
    return providers.list_global(req, COLLECTION, render_many, where=where)


async def get_one(req: ApiRequest) -> Response:
    """Show an amphora."""
    with req.app.engine.connect() as conn:
        row = load(conn, req.path_params["id"])
    common.authorize(req, RESOURCE, "get_one", req.context.project_id)
    return common.one_response(req, "amphora", render(row))


async def delete_one(req: ApiRequest) -> Response:
    """Delete an amphora in ERROR."""
    common.authorize(req, RESOURCE, "delete", req.context.project_id)
    ident = req.path_params["id"]
    with req.app.engine.begin() as conn:
        amp = load(conn, ident, lock=True)
        if amp.status != c.ERROR:
            raise ImmutableObject("amphora", ident)
        conn.execute(update(AMP).where(AMP.c.id == ident).values(
            status=c.DELETED, updated_at=common.utcnow()))
        reconcile_later(conn, amp.load_balancer_id)  # so a missing amphora is rebuilt
    if amp.load_balancer_id:
        req.app.notify(amp.load_balancer_id)
    return Response(204)


async def failover(req: ApiRequest) -> Response:
    """Replace an amphora; its load balancer must be ACTIVE."""
    ident = req.path_params["id"]
    with req.app.engine.begin() as conn:
        amp = load(conn, ident)
        common.authorize(req, RESOURCE, "put_failover", lb_project(conn, amp))
        if amp.load_balancer_id is None:
            raise ImmutableObject("amphora", ident)
        lb = common.lock_lb(conn, amp.load_balancer_id)
        common.require_lb_mutable(lb)
        request_failover(conn, lb.id, ident)
        common.mark_lb_changed(conn, lb.id)
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb.id)
                     .values(updated_at=common.utcnow()))
    req.app.notify(lb.id)
    return Response(202)


async def put_config(req: ApiRequest) -> Response:
    """Push the amphora's configuration to it again."""
    ident = req.path_params["id"]
    with req.app.engine.begin() as conn:
        amp = load(conn, ident)
        common.authorize(req, RESOURCE, "put_config", lb_project(conn, amp))
        conn.execute(update(AMP).where(AMP.c.id == ident).values(active_digest=None))
        reconcile_later(conn, amp.load_balancer_id)
    if amp.load_balancer_id:
        req.app.notify(amp.load_balancer_id)
    return Response(202)


async def stats(req: ApiRequest) -> Response:
    """Per-listener statistics as reported by one amphora."""
    common.authorize(req, RESOURCE, "get_stats", req.context.project_id)
    ident = req.path_params["id"]
    s, li = t.listener_statistics, t.listener
    stmt = (select(s, li.c.load_balancer_id).join(li, li.c.id == s.c.listener_id)
            .where(s.c.amphora_id == ident).order_by(li.c.created_at, li.c.id))
    with req.app.engine.connect() as conn:
        rows = list(conn.execute(stmt))
    if not rows:
        raise NotFound("Amphora stats for", ident)
    return Response(200, {"amphora_stats": [{
        "id": r.amphora_id, "listener_id": r.listener_id,
        "loadbalancer_id": r.load_balancer_id, "active_connections": r.active_connections,
        "bytes_in": r.bytes_in, "bytes_out": r.bytes_out, "request_errors": r.request_errors,
        "total_connections": r.total_connections,
    } for r in rows]})


def register(router: Router) -> None:
    base = "/v2/octavia/amphorae"
    router.add("GET", base, get_all)
    router.add("GET", base + "/{id}", get_one)
    router.add("DELETE", base + "/{id}", delete_one)
    router.add("PUT", base + "/{id}/failover", failover)
    router.add("PUT", base + "/{id}/config", put_config)
    router.add("GET", base + "/{id}/stats", stats)
