"""Load balancers: CRUD, cascade delete, stats, status and failover.

VIP selection lives in ``vips``; the stats totals and status tree in ``loadbalancer_status``
(``sum_stats`` stays importable from here: listeners use it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from lbaas.api import common, listing
from lbaas.api.errors import ApiError, InvalidState, ValidationFailure
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud
from lbaas.api.resources.loadbalancer_cascade import cascade_mark_deleted, request_failover
from lbaas.api.resources.loadbalancer_flavor import flavor_topology, provider_of
from lbaas.api.resources.loadbalancer_status import status_tree, sum_stats
from lbaas.api.resources.spec import Resource
from lbaas.api.resources.vips import allocate_vip
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    PROJECT_ID,
    TAGS,
    Field,
    IpAddress,
    Lazy,
    ListOf,
    Object,
    String,
    Uuid,
    description_field,
    name_field,
    parse_envelope,
)
from lbaas.domain import constants as c
from lbaas.logs import current_request_id
from lbaas.store import raw_insert
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, ids_by, set_tags, tags_for

RESOURCE = "loadbalancer"
LABEL = "Load Balancer"

ADDITIONAL_VIP = Object((Field("subnet_id", Uuid(), required=True, nullable=False),
                         Field("ip_address", IpAddress())), name="additional_vip")

FIELDS = (
    name_field(default=None), description_field(default=None), ADMIN_STATE_UP, PROJECT_ID,
    Field("vip_address", IpAddress(), on_update=False),
    Field("vip_port_id", Uuid(), on_update=False),
    Field("vip_subnet_id", Uuid(), on_update=False),
    Field("vip_network_id", Uuid(), on_update=False),
    Field("vip_qos_policy_id", Uuid()),
    Field("vip_sg_ids", ListOf(Uuid())),
    Field("additional_vips", ListOf(ADDITIONAL_VIP), on_update=False, default=list),
    Field("provider", String(64), on_update=False),
    Field("flavor_id", Uuid(), on_update=False),
    Field("availability_zone", String(255), on_update=False),
    TAGS,
    Field("listeners", ListOf(Lazy(lambda: GRAPH_HOOK["listener_type"])), on_update=False),
    Field("pools", ListOf(Lazy(lambda: GRAPH_HOOK["pool_type"])), on_update=False),
)

COLLECTION = listing.Collection(t.load_balancer, "loadbalancers", "loadbalancers_links",
                                hidden=frozenset({"generation", "applied_generation"}))

# Filled by lbaas.api.resources.graph (single-call create): it imports the listener module,
# which imports this one.
GRAPH_HOOK: dict[str, Any] = {}


# Columns render() reads, in the order it unpacks them: one itemgetter call per row costs a
# fraction of 20-odd Row attribute lookups, which were a third of a list request's CPU.
_RENDERED = ("id", "name", "description", "project_id", "provisioning_status",
             "operating_status", "admin_state_up", "vip_address", "vip_port_id", "vip_subnet_id",
             "vip_network_id", "vip_qos_policy_id", "vip_sg_ids", "vip_vnic_type",
             "additional_vips", "provider", "flavor_id", "availability_zone", "created_at",
             "updated_at")


@lru_cache(maxsize=8)
def _picker(fields: tuple[str, ...]) -> Callable[[Row[Any]], tuple[Any, ...]]:
    return itemgetter(*(fields.index(name) for name in _RENDERED))


def render(row: Row[Any], listeners: list[str], pools: list[str], tags: list[str]) \
        -> dict[str, Any]:
    return _render(_picker(row._fields)(row), listeners, pools, tags)


def _render(values: tuple[Any, ...], listeners: list[str], pools: list[str], tags: list[str]) \
        -> dict[str, Any]:
    (lb_id, name, description, project_id, provisioning_status, operating_status,
     admin_state_up, vip_address, vip_port_id, vip_subnet_id, vip_network_id, vip_qos_policy_id,
     vip_sg_ids, vip_vnic_type, additional_vips, provider, flavor_id, availability_zone,
     created_at, updated_at) = values
    return {
        "id": lb_id,
        "name": "" if name is None else name,
        "description": "" if description is None else description,
        "project_id": project_id,
        "tenant_id": project_id,
        "provisioning_status": provisioning_status,
        "operating_status": operating_status,
        "admin_state_up": admin_state_up,
        "vip_address": vip_address,
        "vip_port_id": vip_port_id,
        "vip_subnet_id": vip_subnet_id,
        "vip_network_id": vip_network_id,
        "vip_qos_policy_id": vip_qos_policy_id,
        "vip_sg_ids": list(vip_sg_ids or []),
        "vip_vnic_type": vip_vnic_type or c.VNIC_NORMAL,
        "additional_vips": list(additional_vips or []),
        "listeners": [{"id": i} for i in listeners],
        "pools": [{"id": i} for i in pools],
        "provider": provider or "octavia",
        "flavor_id": flavor_id,
        "availability_zone": availability_zone,
        # same text as common.iso(): whole seconds, no offset for naive UTC values
        "created_at": None if created_at is None else created_at.isoformat(timespec="seconds"),
        "updated_at": None if updated_at is None else updated_at.isoformat(timespec="seconds"),
        "tags": tags,
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    pick = _picker(rows[0]._fields)
    picked = [pick(r) for r in rows]
    ids = [v[0] for v in picked]
    listeners = ids_by(conn, t.listener, "load_balancer_id", ids)
    pools = ids_by(conn, t.pool, "load_balancer_id", ids)
    tags = tags_for(conn, ids)
    return [_render(v, listeners[v[0]], pools[v[0]], tags[v[0]]) for v in picked]


def load_view(conn: Connection, lb_id: str) -> dict[str, Any]:
    row = common.get_row(conn, t.load_balancer, lb_id, LABEL)
    return render_many(conn, [row])[0]


async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), "loadbalancer", FIELDS, "create")
    state = req.app
    project_id = common.creation_project(req, body.get("project_id"))
    common.authorize(req, RESOURCE, "post", project_id)
    lb_id = common.new_id()
    now = common.utcnow()
    with state.engine.begin() as conn:
        provider = provider_of(req, body.get("provider"))
        provider, topology = flavor_topology(conn, req, body, provider)
        common.check_quota(conn, req, project_id, "load_balancer")
        vip = allocate_vip(conn, req, lb_id, project_id, body, topology, now, provider)
        values = dict(
            id=lb_id, project_id=project_id, name=body.get("name"),
            description=body.get("description"), provisioning_status=c.PENDING_CREATE,
            operating_status=c.OFFLINE, admin_state_up=body["admin_state_up"],
            topology=topology, provider=provider, flavor_id=body.get("flavor_id"),
            availability_zone=body.get("availability_zone"), vip_vnic_type=c.VNIC_NORMAL,
            vip_sg_ids=body.get("vip_sg_ids") or [], generation=1, applied_generation=0,
            last_request_id=current_request_id(), created_at=now, **vip)
        raw_insert.insert(conn, t.load_balancer, values)
        add_tags(conn, lb_id, body.get("tags"))
        graph = GRAPH_HOOK.get("create")
        if body.get("listeners") or body.get("pools"):
            if graph is None:
                raise ApiError("Single-call create is not available.", 501)
            lb = common.inserted_row(conn, t.load_balancer, values, LABEL)
            created = graph(conn, req, lb, body, now)
            # the full response replaces the lists of ids with the objects themselves
            view = GRAPH_HOOK["render_full"](conn, render(
                lb, [], [], common.new_tags(conn, lb_id, body.get("tags"))), created)
        else:  # no children: the full response's lists are empty, nothing to read back
            view = render(common.inserted_row(conn, t.load_balancer, values, LABEL), [], [],
                          common.new_tags(conn, lb_id, body.get("tags")))
    state.notify(lb_id)
    return Response(201, {"loadbalancer": view})


async def put(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), "loadbalancer", FIELDS, "update")
    lb_id = req.path_params["id"]
    state = req.app
    with state.engine.begin() as conn:
        lb = common.lock_lb(conn, lb_id)
        common.authorize(req, RESOURCE, "put", lb.project_id)
        if lb.provisioning_status != c.ACTIVE:
            raise InvalidState(lb.provisioning_status, lb_id)
        values: dict[str, Any] = {}
        for key in ("name", "description", "vip_qos_policy_id"):
            if key in body:
                values[key] = body[key]
        if "admin_state_up" in body:
            values["admin_state_up"] = bool(body["admin_state_up"])
        if "vip_sg_ids" in body:
            values["vip_sg_ids"] = body["vip_sg_ids"] or []
        values["updated_at"] = common.utcnow()
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(**values))
        if "tags" in body:
            set_tags(conn, lb_id, body["tags"])
        common.mark_lb_changed(conn, lb_id)
        view = load_view(conn, lb_id)
    state.notify(lb_id)
    return Response(200, {"loadbalancer": view})


async def delete(req: ApiRequest) -> Response:
    lb_id = req.path_params["id"]
    cascade = (req.param("cascade") or "").strip().lower() in ("true", "1", "yes", "on", "t")
    state = req.app
    with state.engine.begin() as conn:
        lb = common.lock_lb(conn, lb_id)
        common.authorize(req, RESOURCE, "delete", lb.project_id)
        # As upstream: the children check (400) comes before the state check (409).
        has_children = any(
            conn.execute(select(func.count()).select_from(tb)
                         .where(tb.c.load_balancer_id == lb_id)).scalar_one()
            for tb in (t.listener, t.pool))
        if has_children and not cascade:
            raise ValidationFailure(f"Cannot delete Load Balancer {lb_id} - it has children")
        if lb.provisioning_status not in (c.ACTIVE, c.ERROR):
            raise InvalidState(lb.provisioning_status, lb_id)
        if cascade:
            cascade_mark_deleted(conn, lb_id)
        common.mark_lb_changed(conn, lb_id, c.PENDING_DELETE)
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(updated_at=common.utcnow()))
    state.notify(lb_id)
    return Response(204)


async def stats(req: ApiRequest) -> Response:
    lb_id = req.path_params["id"]
    with req.app.engine.connect() as conn:
        lb = common.get_row(conn, t.load_balancer, lb_id, LABEL)
        common.authorize(req, RESOURCE, "get_stats", lb.project_id)
        listener_ids = [r.id for r in conn.execute(select(t.listener.c.id).where(
            t.listener.c.load_balancer_id == lb_id))]
        totals = sum_stats(conn, listener_ids)
    return Response(200, {"stats": totals})


async def status(req: ApiRequest) -> Response:
    lb_id = req.path_params["id"]
    with req.app.engine.connect() as conn:
        lb = common.get_row(conn, t.load_balancer, lb_id, LABEL)
        common.authorize(req, RESOURCE, "get_status", lb.project_id)
        tree = status_tree(conn, lb)
    return Response(200, tree)


async def failover(req: ApiRequest) -> Response:
    lb_id = req.path_params["id"]
    state = req.app
    with state.engine.begin() as conn:
        lb = common.lock_lb(conn, lb_id)
        common.authorize(req, RESOURCE, "put_failover", lb.project_id)
        if lb.provisioning_status not in (c.ACTIVE, c.ERROR):
            raise InvalidState(lb.provisioning_status, lb_id)
        common.mark_lb_changed(conn, lb_id)
        request_failover(conn, lb_id)
    state.notify(lb_id)
    return Response(202)


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.load_balancer,
    path="/v2/lbaas/loadbalancers", fields=FIELDS, collection=COLLECTION,
    render_many=render_many,
    list_where=lambda: [t.load_balancer.c.provisioning_status != c.DELETED])
HANDLERS = crud.handlers(SPEC, create, put_=put, delete_=delete, item_routes=[
    ("GET", "/stats", stats), ("GET", "/status", status), ("GET", "/statuses", status),
    ("PUT", "/failover", failover)])
register = HANDLERS.register
get_one = HANDLERS.get_one
OPENAPI = SPEC.openapi()
