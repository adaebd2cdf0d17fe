"""Neutron's per-project quotas for the network subset, and their enforcement on create.

Resources and defaults are Neutron's (``[neutron_quotas]``: network 100, subnet 100, port 500,
floatingip 50; -1 = unlimited); routers and security groups are not resources here, so they have
no quota. A create that would pass the limit is Neutron's 409 ``OverQuota`` ("Quota exceeded for
resources: ['port']."); counting and inserting happen under the project's quota lock
(``store.quota_lock``, shared with the load-balancer quotas), so concurrent creates cannot pass
it together. As for the load-balancer quotas, nothing is enforced under ``noauth`` (every
caller is admin there and chooses its project).

What counts is what Neutron would count for the project: its networks, subnets, floating IPs and
ports, including the VIP ports lbaas makes for its load balancers (Octavia creates them with the
load balancer's project, so a full port quota is a 409 on load balancer create, as upstream).
Amphora legs (``compute:amphora``) do not count: upstream they belong to Octavia's service
project. Floating IP and router ports have no project, as in Neutron.

Addresses on networks the project does not own (shared or external, e.g. ``public``) have
their own per-project limit, ``[neutron_quotas] quota_shared_address`` (default 50, -1 =
unlimited; a deployment setting only, not settable per project through the API): the port
quota alone let one project's load balancers take every address of ``public``. It counts the
project's addresses there: the fixed IPs of its ports (VIP ports, additional VIPs, amphora legs,
which carry the load balancer's project, and its own ports) and its floating IPs. Over it is
Neutron's 409 OverQuota for ``shared_address`` (in Octavia's format on a VIP).

API: ``GET /quotas`` (admin: projects with a limit set), ``GET /quotas/tenant``, ``GET|PUT|DELETE
/quotas/{project_id}``, ``GET /quotas/{project_id}/default`` and ``.../details`` (limit, used,
reserved). Admins set limits; a project reads its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources.networking.access import READ_ROLES, is_admin
from lbaas.api.resources.networking.bodies import read_body
from lbaas.api.resources.networking.errors import NeutronError, bad_request, forbidden, invalid_attr
from lbaas.api.resources.networking.listing import API
from lbaas.store import tables as t
from lbaas.store.listing import count
from lbaas.store.quota_lock import lock_project

RESOURCES = ("floatingip", "network", "port", "subnet")
SHARED_ADDRESS = "shared_address"  # not in RESOURCES: no per-project column, not in the API
AMPHORA_PORT_OWNER = "compute:amphora"  # controller.provisioning.PORT_OWNER (a layer above)
MAX_LIMIT = 2**31 - 1  # the column is an INTEGER


def over_quota_message(resource: str) -> str:
    return f"Quota exceeded for resources: ['{resource}']."


def defaults(req: ApiRequest) -> dict[str, int]:
    settings = req.app.settings.neutron_quotas
    return {name: int(getattr(settings, f"quota_{name}")) for name in RESOURCES}


def _row(conn: Connection, project_id: str) -> Row[Any] | None:
    return conn.execute(select(t.network_quota)
                        .where(t.network_quota.c.project_id == project_id)).first()


def limits(conn: Connection, req: ApiRequest, project_id: str) -> dict[str, int]:
    """The project's effective limits: its own where set, else the defaults."""
    row = _row(conn, project_id)
    fallback = defaults(req)
    return {name: (fallback[name] if row is None or getattr(row, name) is None
                   else int(getattr(row, name))) for name in RESOURCES}


def used(conn: Connection, project_id: str, resource: str) -> int:
    table = {"network": t.network, "subnet": t.subnet, "port": t.port,
             "floatingip": t.floating_ip}[resource]
    where = [table.c.project_id == project_id]
    if table is t.port:
        where.append(or_(t.port.c.device_owner.is_(None),
                         t.port.c.device_owner != AMPHORA_PORT_OWNER))
    return count(conn, table, *where)


def over_quota(conn: Connection, req: ApiRequest, project_id: str | None, resource: str,
               adding: int = 1) -> bool:
    """Whether ``adding`` more of ``resource`` would pass the project's limit; takes the
    project's quota lock (held to the end of ``conn``'s transaction) when a limit applies."""
    if req.context.noauth or not project_id or adding <= 0:
        return False
    limit = limits(conn, req, project_id)[resource]
    if limit < 0:
        return False
    lock_project(conn, project_id)
    return used(conn, project_id, resource) + adding > limit


def check(conn: Connection, req: ApiRequest, project_id: str | None, resource: str,
          adding: int = 1) -> None:
    """Neutron's 409 OverQuota when the create would pass the project's limit."""
    if over_quota(conn, req, project_id, resource, adding):
        raise NeutronError("OverQuota", over_quota_message(resource), 409)


def not_owned_by(project_id: str) -> Any:
    return or_(t.network.c.project_id.is_(None), t.network.c.project_id != project_id)


def shared_addresses_used(conn: Connection, project_id: str) -> int:
    """The project's addresses on networks it does not own: its ports' fixed IPs (amphora legs
    included) and its floating IPs."""
    fixed = select(func.count()).select_from(
        t.ip_allocation.join(t.port, t.port.c.id == t.ip_allocation.c.port_id)
        .join(t.network, t.network.c.id == t.port.c.network_id)).where(
        t.port.c.project_id == project_id, not_owned_by(project_id))
    floating = select(func.count()).select_from(
        t.floating_ip.join(t.network, t.network.c.id == t.floating_ip.c.floating_network_id)
    ).where(t.floating_ip.c.project_id == project_id, not_owned_by(project_id))
    return int(conn.execute(fixed).scalar_one()) + int(conn.execute(floating).scalar_one())


def over_shared_quota(conn: Connection, req: ApiRequest, project_id: str | None,
                      network_id: str, adding: int = 1) -> bool:
    """Whether ``adding`` more addresses on ``network_id`` would pass the project's limit on
    addresses in networks it does not own; under the project's quota lock, as ``over_quota``."""
    if req.context.noauth or not project_id or adding <= 0:
        return False
    limit = int(req.app.settings.neutron_quotas.quota_shared_address)
    if limit < 0:
        return False
    owner = conn.execute(select(t.network.c.project_id)
                         .where(t.network.c.id == network_id)).scalar_one_or_none()
    if owner == project_id:
        return False
    lock_project(conn, project_id)
    return shared_addresses_used(conn, project_id) + adding > limit


def check_shared(conn: Connection, req: ApiRequest, project_id: str | None, network_id: str,
                 adding: int = 1) -> None:
    """Neutron's 409 OverQuota when the addresses would pass the project's shared limit."""
    if over_shared_quota(conn, req, project_id, network_id, adding):
        raise NeutronError("OverQuota", over_quota_message(SHARED_ADDRESS), 409)


# ------------------------------------------------------------------------------------ API --

def _may_read(req: ApiRequest, project_id: str) -> bool:
    if is_admin(req):
        return True
    ctx = req.context
    return project_id == ctx.project_id and (
        not req.app.policy.new_defaults or any(r in ctx.roles for r in READ_ROLES))


def _authorize(req: ApiRequest, action: str, project_id: str) -> None:
    allowed = is_admin(req) if action != "get_quota" else _may_read(req, project_id)
    if not allowed:
        raise forbidden(action)


def _parse(req: ApiRequest) -> dict[str, int]:
    body = read_body(req, "quota", frozenset(RESOURCES), frozenset(RESOURCES), create=False)
    values: dict[str, int] = {}
    for name, value in body.items():
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise invalid_attr(name, f"'{value}' is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_attr(name, f"'{value}' is not an integer")
        if value < -1:
            raise invalid_attr(name, f"'{value}' is too small - must be at least '-1'")
        if value > MAX_LIMIT:
            raise invalid_attr(name, f"'{value}' is too large - must be no larger than "
                               f"'{MAX_LIMIT}'")
        values[name] = value
    return values


async def list_quotas(req: ApiRequest) -> Response:
    """Projects with at least one limit of their own (Neutron: non-default quotas)."""
    _authorize(req, "get_quota", "")
    with req.app.engine.connect() as conn:
        rows = conn.execute(select(t.network_quota.c.project_id).where(or_(
            *(t.network_quota.c[name].is_not(None) for name in RESOURCES)))
            .order_by(t.network_quota.c.project_id)).scalars().all()
        items = [{**limits(conn, req, p), "project_id": p, "tenant_id": p} for p in rows]
    return Response(200, {"quotas": items})


async def show_tenant(req: ApiRequest) -> Response:
    return Response(200, {"tenant": {"tenant_id": req.context.project_id}})


async def show_quota(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _authorize(req, "get_quota", project_id)
    with req.app.engine.connect() as conn:
        return Response(200, {"quota": limits(conn, req, project_id)})


async def show_defaults(req: ApiRequest) -> Response:
    _authorize(req, "get_quota", req.path_params["project_id"])
    return Response(200, {"quota": defaults(req)})


async def show_details(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _authorize(req, "get_quota", project_id)
    with req.app.engine.connect() as conn:
        limit = limits(conn, req, project_id)
        return Response(200, {"quota": {
            name: {"limit": limit[name], "used": used(conn, project_id, name), "reserved": 0}
            for name in RESOURCES}})


async def update_quota(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _authorize(req, "update_quota", project_id)
    values = _parse(req)
    if len(project_id) > 36:
        raise bad_request(f"'{project_id[:40]}' is not a valid project id")
    for attempt in range(2):  # a concurrent first PUT of the same project: retried as update
        try:
            with req.app.engine.begin() as conn:
                if _row(conn, project_id) is None:
                    conn.execute(t.network_quota.insert().values(project_id=project_id,
                                                                 **values))
                elif values:
                    conn.execute(update(t.network_quota)
                                 .where(t.network_quota.c.project_id == project_id)
                                 .values(**values))
                return Response(200, {"quota": limits(conn, req, project_id)})
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def delete_quota(req: ApiRequest) -> Response:
    """Back to the defaults (Neutron answers 204 whether or not limits were set)."""
    project_id = req.path_params["project_id"]
    _authorize(req, "delete_quota", project_id)
    with req.app.engine.begin() as conn:
        conn.execute(t.network_quota.delete().where(t.network_quota.c.project_id == project_id))
    return Response(204)


def register(router: Router) -> None:
    base = f"{API}/quotas"
    router.add("GET", base, list_quotas)
    router.add("GET", base + "/tenant", show_tenant)  # before {project_id}
    router.add("GET", base + "/{project_id}", show_quota)
    router.add("PUT", base + "/{project_id}", update_quota)
    router.add("DELETE", base + "/{project_id}", delete_quota)
    router.add("GET", base + "/{project_id}/default", show_defaults)
    router.add("GET", base + "/{project_id}/details", show_details)
