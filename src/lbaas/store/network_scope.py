"""Which networks, subnets and ports a project can see, as Neutron's ownership rules say.

Neutron's defaults: a network is seen by its project and, when shared or external, by every
project; a subnet by its project, by its network's owner and by everyone when its network is
shared or external; a port by its project and by its network's owner. The management network is
the operator's: no project ever sees it, whatever its flags say (an old data directory seeded it
shared). The API's Neutron reads and its VIP/member checks, and the controller choosing which
subnet a member without ``subnet_id`` is reached through, all use these clauses, so the rule is
written once. ``project`` None (a caller without a role that may read its own project's
objects) sees only what is shared or external.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select

from lbaas.store import tables as t
from lbaas.store.seed import network_id as seeded_network_id


def management_network_ids(management_network: str) -> tuple[str, ...]:
    """The management network setting names a seeded network or gives a network's id."""
    return (seeded_network_id(management_network), management_network)


def operator_network(network: Any) -> bool:
    """Seeded (no project) or external: the operator's network. Only these may be attached to
    the host (its gateway on the bridge, a route to it); a project's own network, even one an
    admin made for it or shared, stays off the host, as Neutron's tenant networks do. Only
    admins add or change subnets of external networks (``networking/subnets.py``), so no
    project picks a range the host would route to its bridge."""
    return network.project_id is None or bool(network.router_external)


def host_gateway_clause() -> ColumnElement[bool]:
    """Subnets whose gateway address the host holds (or will hold): on operator networks."""
    net, sub = t.network.c, t.subnet.c
    return exists(select(net.id).where(
        net.id == sub.network_id,
        or_(net.project_id.is_(None), net.router_external.is_(True))))


def _owned(column: Any, project: str | None) -> ColumnElement[bool]:
    return column == project if project else false()


def _open_network(network: Any) -> ColumnElement[bool]:
    return or_(network.shared.is_(True), network.router_external.is_(True))


def network_visible(project: str | None, management: tuple[str, ...]) -> ColumnElement[bool]:
    net = t.network.c
    return and_(or_(_owned(net.project_id, project), _open_network(net)),
                net.id.not_in(management))


def subnet_visible(project: str | None, management: tuple[str, ...]) -> ColumnElement[bool]:
    net, sub = t.network.c, t.subnet.c
    through_network = exists(select(net.id).where(
        net.id == sub.network_id, or_(_open_network(net), _owned(net.project_id, project))))
    return and_(or_(_owned(sub.project_id, project), through_network),
                sub.network_id.not_in(management))


def port_visible(project: str | None, management: tuple[str, ...]) -> ColumnElement[bool]:
    net, port = t.network.c, t.port.c
    network_owner = exists(select(net.id).where(
        net.id == port.network_id, _owned(net.project_id, project)))
    return and_(or_(_owned(port.project_id, project), network_owner),
                port.network_id.not_in(management))


def not_management(table: Any, management: tuple[str, ...]) -> ColumnElement[bool]:
    column = table.c.id if table is t.network else table.c.network_id
    return column.not_in(management)
