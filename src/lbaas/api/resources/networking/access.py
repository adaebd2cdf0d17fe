"""Who may see, change and use networks, subnets and ports: the one place for ownership rules.

Reading follows Neutron's default policy (``store.network_scope``): admins see everything;
others see what their project owns (with a reader, member or admin role; any role under the
deprecated defaults), what is shared or external, and the ports on networks they own. Writing
needs the member role on the owning project (or the network's, where Neutron says so).

Using them for a load balancer follows Octavia, which looks a VIP's or member's network, subnet
and port up with the user's own token: what the caller cannot see does not exist for it, and the
answer is Octavia's "<Resource> <id> not found." (``allow_invisible_resource_usage`` turns that
off, as upstream). The management network is never usable, by anyone: tenants cannot see it,
admins are told the deployment does not allow it. Member addresses are also checked against the
operator's own addresses (``reserved``).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, Table, bindparam, select

from lbaas.api.errors import ApiError, BadRequest, ValidationFailure
from lbaas.api.http import ApiRequest
from lbaas.api.resources.networking import reserved
from lbaas.api.resources.networking.errors import forbidden
from lbaas.api.resources.networking.kinds import Kind
from lbaas.store import network_scope as scope
from lbaas.store import tables as t

READ_ROLES = ("reader", "member", "admin")
WRITE_ROLES = ("member", "admin")
VIP_NETWORK_REFUSED = ("Supplied VIP network_id is not allowed by the configuration of this "
                       "deployment.")


def is_admin(req: ApiRequest) -> bool:
    return bool(req.app.policy.admin(req.context))


def _own_project(req: ApiRequest, roles: tuple[str, ...]) -> str | None:
    """The caller's project if its roles let it act on its own objects, else None."""
    ctx = req.context
    if not req.app.policy.new_defaults or any(r in ctx.roles for r in roles):
        return ctx.project_id
    return None


def management(req: ApiRequest) -> tuple[str, ...]:
    return _management_ids(req.app.settings.networking.management_network)


# a uuid5 per call, several times per member address: the setting does not change
_management_ids = functools.lru_cache(maxsize=8)(scope.management_network_ids)


@functools.cache
def _by_id(table: Table) -> Select[Any]:
    """A row by id, for callers who may see every row: built once (per table)."""
    return select(table).where(table.c.id == bindparam("ident"))


# ----------------------------------------------------------------------------- Neutron API --

def visible(req: ApiRequest, table: Table) -> list[ColumnElement[bool]]:
    """WHERE clauses limiting ``table`` to what the caller may see."""
    if is_admin(req):
        return []
    rule = {t.network: scope.network_visible, t.subnet: scope.subnet_visible,
            t.port: scope.port_visible}[table]
    return [rule(_own_project(req, READ_ROLES), management(req))]


def fetch(conn: Connection, req: ApiRequest, kind: Kind, ident: str,
          lock: bool = False) -> Row[Any]:
    """The row if the caller may see it; Neutron's 404 otherwise."""
    stmt = select(kind.table).where(kind.table.c.id == ident, *visible(req, kind.table))
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise kind.not_found(ident)
    return row


def may_write(req: ApiRequest, *owners: str | None) -> bool:
    """Admin, or a member of one of the owning projects."""
    if is_admin(req):
        return True
    project = _own_project(req, WRITE_ROLES)
    return project is not None and project in owners


def authorize(req: ApiRequest, action: str, *owners: str | None) -> None:
    if not may_write(req, *owners):
        raise forbidden(action)


def network_owner(conn: Connection, network_id: str) -> str | None:
    return conn.execute(select(t.network.c.project_id)
                        .where(t.network.c.id == network_id)).scalar()


# ------------------------------------------------------------------- VIPs and members --

def _usable(conn: Connection, req: ApiRequest, table: Table, ident: str,
            missing: ApiError, operator_only: ApiError) -> None:
    """Raise ``missing`` unless the caller may use the row, ``operator_only`` if it is the
    management network's (only admins and ``allow_invisible_resource_usage`` get that far)."""
    clauses = [] if req.app.settings.networking.allow_invisible_resource_usage \
        else visible(req, table)
    row = (conn.execute(select(table).where(table.c.id == ident, *clauses)) if clauses
           else conn.execute(_by_id(table), {"ident": ident})).first()
    if row is None:
        raise missing
    req.memo[(table.name, ident)] = row  # the VIP's subnet is looked up again next
    network_id = row.id if table is t.network else row.network_id
    if network_id in management(req):
        raise operator_only


def check_vip(conn: Connection, req: ApiRequest, body: dict[str, Any]) -> None:
    """The VIP's port (else network) and subnets must be usable by the caller; the port wins
    over the network, as in the VIP selection that follows."""
    refused = ValidationFailure(VIP_NETWORK_REFUSED)
    if body.get("vip_port_id"):
        port_id = body["vip_port_id"]
        _usable(conn, req, t.port, port_id, BadRequest(f"Port {port_id} not found."), refused)
    elif body.get("vip_network_id"):
        net_id = body["vip_network_id"]
        _usable(conn, req, t.network, net_id, BadRequest(f"Network {net_id} not found."),
                refused)
    if body.get("vip_subnet_id"):
        subnet_id = body["vip_subnet_id"]
        _usable(conn, req, t.subnet, subnet_id, BadRequest(f"Subnet {subnet_id} not found."),
                refused)
    for extra in body.get("additional_vips") or []:
        subnet_id = extra["subnet_id"]
        # upstream's message for additional VIPs has no period
        _usable(conn, req, t.subnet, subnet_id, ValidationFailure(f"Subnet {subnet_id} not found"),
                refused)


def check_member(conn: Connection, req: ApiRequest, body: dict[str, Any]) -> None:
    """A member's subnet must be usable by the caller; its address and monitor address must
    not be the operator's (this host, the health manager, the API, the management network)."""
    subnet_id = body.get("subnet_id")
    if subnet_id:
        _usable(conn, req, t.subnet, subnet_id, BadRequest(f"Subnet {subnet_id} not found."),
                ValidationFailure(f"Subnet {subnet_id} is on the management network, which "
                                  "members cannot use."))
    mgmt = management(req)
    for key, option in (("address", "member address"),
                        ("monitor_address", "member monitor_address")):
        if body.get(key):
            reserved.check_not_operator(conn, req.app.settings, mgmt, body[key], option,
                                        req.memo)
