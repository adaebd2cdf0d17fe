"""The Neutron-compatible subset clients need: networks, subnets and ports under ``/networking``.

The load-balancer API already answers ``GET /`` with Octavia's version document, so the network
API has its own root (``/networking``) with a Neutron version document; clouds.yaml points the
``network`` endpoint there and keystoneauth discovers ``/networking/v2.0/`` from it. Bodies,
filters and errors follow Neutron (``{"NeutronError": {...}}``), not Octavia's WSME shapes.
Lists are small (a handful of networks, one port per VIP), so filtering, sorting and paging run
over rendered objects, which gives Neutron's "filter on any attribute" semantics for free.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Row, Table, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError

from lbaas.api import common
from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.store import tables as t

PREFIX = "/networking"
API = PREFIX + "/v2.0"
PAGING_PARAMS = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"})
MAX_NAME = 255
LIST_ATTRIBUTES = frozenset({"subnets", "allocation_pools", "fixed_ips", "tags",
                             "dns_nameservers", "host_routes", "service_types",
                             "availability_zone_hints", "availability_zones",
                             "allowed_address_pairs", "security_groups", "extra_dhcp_opts"})


class NeutronError(ApiError):
    """An error rendered as Neutron renders it."""

    def __init__(self, kind: str, message: str, status: int, detail: str = "") -> None:
        super().__init__(message, status)
        self.kind = kind
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"NeutronError": {"type": self.kind, "message": self.faultstring,
                                 "detail": self.detail}}


def bad_request(message: str) -> NeutronError:
    return NeutronError("HTTPBadRequest", message, 400)


def invalid_input(message: str) -> NeutronError:
    return NeutronError("InvalidInput", f"Invalid input for operation: {message}.", 400)


def invalid_attr(attr: str, reason: str) -> NeutronError:
    return NeutronError("HTTPBadRequest", f"Invalid input for {attr}. Reason: {reason}.", 400)


def forbidden(action: str) -> NeutronError:
    return NeutronError("PolicyNotAuthorized", f"(rule:{action}) is disallowed by policy", 403)


# ------------------------------------------------------------------------------- rendering --

def stamp(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def _audit(row: Row[Any]) -> dict[str, Any]:
    return {"created_at": stamp(row.created_at), "updated_at": stamp(row.updated_at or
                                                                       row.created_at)}


def render_network(row: Row[Any], subnets: list[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": common.text(row.name), "description": "",
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "admin_state_up": row.admin_state_up, "status": "ACTIVE", "subnets": subnets,
        "shared": row.shared, "router:external": row.router_external,
        "port_security_enabled": row.port_security_enabled, "mtu": 1500,
        "availability_zone_hints": [], "availability_zones": [],
        "ipv4_address_scope": None, "ipv6_address_scope": None, "tags": [], **_audit(row),
    }


def render_subnet(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id, "name": common.text(row.name), "description": "",
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "network_id": row.network_id, "ip_version": row.ip_version, "cidr": row.cidr,
        "gateway_ip": row.gateway_ip,
        "allocation_pools": [{"start": p["start"], "end": p["end"]}
                             for p in row.allocation_pools],
        # Addresses are always handed out by lbaas's IPAM, which is what DHCP means to clients.
        "enable_dhcp": True, "dns_nameservers": [], "host_routes": [], "service_types": [],
        "ipv6_ra_mode": None, "ipv6_address_mode": None, "subnetpool_id": None,
        "segment_id": None, "tags": [], **_audit(row),
    }


def render_port(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id, "name": common.text(row.name), "description": "",
        "tenant_id": common.text(row.project_id), "project_id": common.text(row.project_id),
        "network_id": row.network_id, "mac_address": row.mac_address, "admin_state_up": True,
        "status": "ACTIVE" if row.device_id else "DOWN",
        "device_id": common.text(row.device_id), "device_owner": common.text(row.device_owner),
        "fixed_ips": [{"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]}
                      for f in row.fixed_ips],
        "allowed_address_pairs": [], "security_groups": [], "extra_dhcp_opts": [],
        "binding:vnic_type": "normal", "port_security_enabled": True,
        "qos_policy_id": row.qos_policy_id, "tags": [], **_audit(row),
    }


def _subnet_ids(conn: Connection, network_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in network_ids}
    if network_ids:
        rows = conn.execute(select(t.subnet.c.id, t.subnet.c.network_id)
                            .where(t.subnet.c.network_id.in_(network_ids))
                            .order_by(t.subnet.c.created_at, t.subnet.c.id))
        for sid, nid in rows:
            out[nid].append(sid)
    return out


def render_networks(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    subnets = _subnet_ids(conn, [r.id for r in rows])
    return [render_network(r, subnets[r.id]) for r in rows]


def render_subnets(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    return [render_subnet(r) for r in rows]


def render_ports(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    return [render_port(r) for r in rows]


# ------------------------------------------------------------------------------ visibility --

def is_admin(req: ApiRequest) -> bool:
    return bool(req.app.policy.admin(req.context))


def visible(req: ApiRequest, table: Table) -> list[Any]:
    """WHERE clauses limiting ``table`` to what the caller may see (Neutron's default policy)."""
    if is_admin(req):
        return []
    project = req.context.project_id
    if table is t.network:
        return [or_(t.network.c.shared.is_(True), t.network.c.project_id == project)]
    if table is t.subnet:
        shared = exists().where(t.network.c.id == t.subnet.c.network_id,
                                t.network.c.shared.is_(True))
        return [or_(shared, t.subnet.c.project_id == project)]
    return [t.port.c.project_id == project]


@dataclass(frozen=True)
class Kind:
    singular: str
    plural: str
    table: Table
    label: str
    render_many: Callable[[Connection, list[Row[Any]]], list[dict[str, Any]]]
    attributes: frozenset[str]

    def not_found(self, ident: str) -> NeutronError:
        return NeutronError(f"{self.label}NotFound",
                            f"{self.label} {ident} could not be found.", 404)


def _attributes(table: Table, render: Callable[[Any], dict[str, Any]]) -> frozenset[str]:
    """The attribute names ``render`` produces, read off an all-empty row."""
    sample = SimpleNamespace(**{c.name: None for c in table.c})
    sample.allocation_pools = sample.fixed_ips = []
    return frozenset(render(sample))


NETWORK = Kind("network", "networks", t.network, "Network", render_networks,
               _attributes(t.network, lambda r: render_network(r, [])))
SUBNET = Kind("subnet", "subnets", t.subnet, "Subnet", render_subnets,
              _attributes(t.subnet, render_subnet))
PORT = Kind("port", "ports", t.port, "Port", render_ports, _attributes(t.port, render_port))


def fetch(conn: Connection, req: ApiRequest, kind: Kind, ident: str,
          lock: bool = False) -> Row[Any]:
    stmt = select(kind.table).where(kind.table.c.id == ident, *visible(req, kind.table))
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise kind.not_found(ident)
    return row


# ---------------------------------------------------------------------------------- listing --

def _as_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise invalid_input(f"'{raw}' cannot be converted to boolean")


def _matches(value: Any, key: str, wanted: list[str]) -> bool:
    """Neutron's filter semantics: several values for one attribute mean "any of them"."""
    if isinstance(value, bool):
        return value in {_as_bool(w) for w in wanted}
    if key == "fixed_ips":
        pairs = [w.split("=", 1) for w in wanted]
        if any(len(p) != 2 or p[0] not in ("ip_address", "subnet_id") for p in pairs):
            raise bad_request("Invalid fixed_ips filter: use ip_address=X or subnet_id=X")
        return any(f.get(k) == v for f in value for k, v in pairs)
    if isinstance(value, list):
        return any(w in value for w in wanted)
    text = "" if value is None else str(value)
    return text in wanted


def apply_filters(req: ApiRequest, kind: Kind, items: list[dict[str, Any]]) \
        -> list[dict[str, Any]]:
    filters: dict[str, list[str]] = {}
    for key, value in req.query:
        if key not in PAGING_PARAMS:
            filters.setdefault(key, []).append(value)
    for key in filters:
        if key not in kind.attributes:
            raise bad_request(f"{key} is invalid attribute for filtering")
    return [i for i in items if all(_matches(i[k], k, v) for k, v in filters.items())]


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value)


def apply_sort(req: ApiRequest, kind: Kind, items: list[dict[str, Any]]) \
        -> list[dict[str, Any]]:
    keys = req.params("sort_key")
    dirs = req.params("sort_dir")
    if not keys:
        return items
    if dirs and len(dirs) != len(keys):
        raise bad_request("The number of sort_keys and sort_dirs must be same")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise bad_request(f"{d} is invalid value for sort_dir, valid values are 'asc' "
                              "and 'desc'")
    for k in keys:
        if k not in kind.attributes or k in LIST_ATTRIBUTES:
            raise bad_request(f"{k} is invalid attribute for sort_key")
    ordered = sorted(items, key=lambda i: i["id"])
    for k, d in reversed(list(zip(keys, dirs or ["asc"] * len(keys), strict=True))):
        ordered.sort(key=lambda i, k=k: _sort_key(i[k]), reverse=d == "desc")
    return ordered


def _limit(req: ApiRequest) -> int | None:
    raw = req.param("limit")
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"Limit must be an integer 0 or greater and not '{raw}'") from None
    if limit < 0:
        raise bad_request(f"Limit must be an integer 0 or greater and not '{raw}'")
    return limit or None


def _link(req: ApiRequest, kind: Kind, rel: str, marker: str, reverse: bool) -> dict[str, str]:
    kept = [(k, v) for k, v in req.query if k not in ("marker", "page_reverse")]
    query = [*kept, ("marker", marker)] + ([("page_reverse", "True")] if reverse else [])
    return {"rel": rel, "href": f"{req.base_url}{API}/{kind.plural}?{urlencode(query)}"}


def paginate(req: ApiRequest, kind: Kind, items: list[dict[str, Any]]) \
        -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Neutron's limit/marker/page_reverse paging with ``<plural>_links``."""
    limit = _limit(req)
    marker = req.param("marker")
    reverse = (req.param("page_reverse") or "false").lower() == "true"
    seq = items
    if marker:
        ids = [i["id"] for i in items]
        if marker not in ids:
            raise kind.not_found(marker)
        at = ids.index(marker)
        seq = items[:at] if reverse else items[at + 1:]
    if limit is None:
        return seq, []
    page = seq[-limit:] if reverse else seq[:limit]
    links: list[dict[str, str]] = []
    if page and len(seq) > limit:
        links.append(_link(req, kind, "previous", page[0]["id"], True) if reverse
                     else _link(req, kind, "next", page[-1]["id"], False))
    if page and marker:
        links.append(_link(req, kind, "next", page[-1]["id"], False) if reverse
                     else _link(req, kind, "previous", page[0]["id"], True))
    return page, links


def select_fields(req: ApiRequest, item: dict[str, Any]) -> dict[str, Any]:
    wanted = [f for v in req.params("fields") for f in v.split(",") if f]
    if not wanted:
        return item
    return {k: v for k, v in item.items() if k in wanted}


def list_handler(kind: Kind) -> Callable[[ApiRequest], Any]:
    async def handler(req: ApiRequest) -> Response:
        table = kind.table
        with req.app.engine.connect() as conn:
            rows = list(conn.execute(select(table).where(*visible(req, table))
                                     .order_by(table.c.created_at, table.c.id)))
            items = kind.render_many(conn, rows)
        items = apply_sort(req, kind, apply_filters(req, kind, items))
        page, links = paginate(req, kind, items)
        body: dict[str, Any] = {kind.plural: [select_fields(req, i) for i in page]}
        if links:
            body[f"{kind.plural}_links"] = links
        return Response(200, body)

    return handler


def show_handler(kind: Kind) -> Callable[[ApiRequest], Any]:
    async def handler(req: ApiRequest) -> Response:
        with req.app.engine.connect() as conn:
            row = fetch(conn, req, kind, req.path_params["id"])
            item = kind.render_many(conn, [row])[0]
        return Response(200, {kind.singular: select_fields(req, item)})

    return handler


# --------------------------------------------------------------------------- create bodies --

def read_body(req: ApiRequest, key: str, allowed: frozenset[str]) -> dict[str, Any]:
    try:
        data = req.json()
    except ApiError:
        raise bad_request("Resource body required") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise bad_request(f"Unable to find '{key}' in request body")
    body = data[key]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request("Unrecognized attribute(s) '" + ", ".join(unknown) + "'")
    return dict(body)


def string(body: dict[str, Any], attr: str, default: str | None = "") -> str | None:
    value = body.get(attr, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str):
        raise invalid_attr(attr, f"'{value}' is not a valid string")
    if len(value) > MAX_NAME:
        raise invalid_attr(attr, f"'{value}' exceeds maximum length of {MAX_NAME}")
    return value


def boolean(body: dict[str, Any], attr: str, default: bool) -> bool:
    value = body.get(attr, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        return _as_bool(str(value))
    raise invalid_input(f"'{value}' cannot be converted to boolean")


def owner(req: ApiRequest, body: dict[str, Any]) -> str | None:
    project = body.get("project_id")
    tenant = body.get("tenant_id")
    if project is not None and tenant is not None and project != tenant:
        raise bad_request("'project_id' and 'tenant_id' do not match")
    wanted = project if project is not None else tenant
    if wanted is not None and not isinstance(wanted, str):
        raise invalid_attr("project_id", f"'{wanted}' is not a valid string")
    return wanted or req.context.project_id


def require_admin(req: ApiRequest, action: str) -> None:
    if not is_admin(req):
        raise forbidden(action)


# -------------------------------------------------------------------------------- networks --

NETWORK_ATTRS = frozenset({"name", "admin_state_up", "shared", "router:external",
                           "port_security_enabled", "project_id", "tenant_id"})


async def create_network(req: ApiRequest) -> Response:
    require_admin(req, "create_network")
    body = read_body(req, "network", NETWORK_ATTRS)
    values = {
        "id": common.new_id(), "project_id": owner(req, body), "name": string(body, "name"),
        "admin_state_up": boolean(body, "admin_state_up", True),
        "shared": boolean(body, "shared", False),
        "router_external": boolean(body, "router:external", False),
        "port_security_enabled": boolean(body, "port_security_enabled", True),
        "created_at": common.utcnow(),
    }
    with req.app.engine.begin() as conn:
        conn.execute(t.network.insert().values(**values))
        row = fetch(conn, req, NETWORK, values["id"])
        item = render_networks(conn, [row])[0]
    return Response(201, {"network": item})


def network_in_use(network_id: str) -> NeutronError:
    return NeutronError("NetworkInUse", f"Unable to complete operation on network {network_id}. "
                        "There are one or more ports still in use on the network.", 409)


def subnet_in_use(subnet_id: str) -> NeutronError:
    return NeutronError("SubnetInUse", f"Unable to complete operation on subnet {subnet_id}: "
                        "One or more ports have an IP allocation from this subnet.", 409)


def subnet_used(conn: Connection, subnet_id: str) -> bool:
    """Addresses allocated from it, or members that an amphora would need a port on."""
    allocated = conn.execute(select(t.ip_allocation.c.port_id).where(
        t.ip_allocation.c.subnet_id == subnet_id).limit(1)).first()
    members = conn.execute(select(t.member.c.id).where(
        t.member.c.subnet_id == subnet_id).limit(1)).first()
    return allocated is not None or members is not None


async def delete_network(req: ApiRequest) -> Response:
    net_id = req.path_params["id"]
    with req.app.engine.begin() as conn:
        fetch(conn, req, NETWORK, net_id, lock=True)
        require_admin(req, "delete_network")
        has_port = conn.execute(select(t.port.c.id).where(
            t.port.c.network_id == net_id).limit(1)).first()
        subnet_ids = list(conn.execute(select(t.subnet.c.id).where(
            t.subnet.c.network_id == net_id)).scalars())
        if has_port is not None or any(subnet_used(conn, s) for s in subnet_ids):
            raise network_in_use(net_id)
        # Like Neutron, deleting an unused network takes its subnets with it.
        conn.execute(delete(t.subnet).where(t.subnet.c.network_id == net_id))
        try:
            conn.execute(delete(t.network).where(t.network.c.id == net_id))
        except IntegrityError:
            raise network_in_use(net_id) from None
    return Response(204)


# --------------------------------------------------------------------------------- subnets --

SUBNET_ATTRS = frozenset({"name", "network_id", "ip_version", "cidr", "gateway_ip",
                          "allocation_pools", "project_id", "tenant_id"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_cidr(body: dict[str, Any]) -> Network:
    raw = body.get("cidr")
    if raw is None:
        raise bad_request("Bad subnets request: a subnetpool must be specified in the "
                          "absence of a cidr.")
    if not isinstance(raw, str):
        raise invalid_attr("cidr", f"'{raw}' is not a valid IP subnet")
    try:
        net = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise invalid_attr("cidr", f"'{raw}' is not a valid IP subnet") from None
    if str(net) != raw or "/" not in raw:
        raise invalid_attr("cidr", f"'{raw}' isn't a recognized IP subnet cidr, '{net}' is "
                           "recommended")
    return net


def parse_version(body: dict[str, Any], net: Network) -> int:
    raw = body.get("ip_version")
    if raw is None:
        raise bad_request("Failed to parse request. Required attribute 'ip_version' not "
                          "specified")
    try:
        version = int(raw)
    except (TypeError, ValueError):
        raise invalid_attr("ip_version", f"'{raw}' is not in [4, 6]") from None
    if version not in (4, 6):
        raise invalid_attr("ip_version", f"'{raw}' is not in [4, 6]")
    if version != net.version:
        raise invalid_input("Cidr and ip_version must match")
    return version


def parse_ip(attr: str, raw: Any) -> Address:
    if not isinstance(raw, str):
        raise invalid_attr(attr, f"'{raw}' is not a valid IP address")
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise invalid_attr(attr, f"'{raw}' is not a valid IP address") from None


def parse_gateway(body: dict[str, Any], net: Network) -> Address | None:
    if "gateway_ip" not in body:
        return next(net.hosts(), None) if net.num_addresses > 2 else None
    if body["gateway_ip"] is None:
        return None
    gateway = parse_ip("gateway_ip", body["gateway_ip"])
    if gateway not in net or gateway == net.network_address or (
            net.version == 4 and net.num_addresses > 2 and gateway == net.broadcast_address):
        raise invalid_input(f"Gateway IP {gateway} is not a valid address in subnet {net}")
    return gateway


def default_pools(net: Network, gateway: Address | None) -> list[tuple[Address, Address]]:
    """Every host address except the gateway, as Neutron computes it."""
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    if net.num_addresses <= 2:
        first, last = net.network_address, net.broadcast_address
    if gateway is None or not first <= gateway <= last:
        return [(first, last)]
    pools = []
    if gateway > first:
        pools.append((first, gateway - 1))
    if gateway < last:
        pools.append((gateway + 1, last))
    return pools


def parse_pools(body: dict[str, Any], net: Network) -> list[tuple[Address, Address]] | None:
    raw = body.get("allocation_pools")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise invalid_attr("allocation_pools", f"Invalid data format for IP pool: '{raw}'")
    pools = []
    for pool in raw:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise invalid_attr("allocation_pools", f"Invalid data format for IP pool: '{pool}'")
        start = parse_ip("allocation_pools", pool["start"])
        end = parse_ip("allocation_pools", pool["end"])
        if start.version != net.version or end.version != net.version or start > end:
            raise bad_request(f"The allocation pool {start}-{end} is not valid.")
        if start not in net or end not in net:
            raise bad_request(f"The allocation pool {start}-{end} spans beyond the subnet "
                              f"cidr {net}.")
        pools.append((start, end))
    ordered = sorted(pools)
    for (s1, e1), (s2, e2) in itertools.pairwise(ordered):
        if s2 <= e1:
            raise NeutronError("OverlappingAllocationPools",
                               f"Found overlapping allocation pools: {s1}-{e1} and "
                               f"{s2}-{e2} for subnet {net}.", 409)
    return pools


def check_gateway_outside(gateway: Address | None,
                          pools: list[tuple[Address, Address]]) -> None:
    for start, end in pools:
        if gateway is not None and start <= gateway <= end:
            raise NeutronError("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{start}-{end}", 409)


def check_overlap(conn: Connection, network_id: str, net: Network) -> None:
    for cidr in conn.execute(select(t.subnet.c.cidr).where(
            t.subnet.c.network_id == network_id)).scalars():
        other = ipaddress.ip_network(cidr)
        if other.version == net.version and other.overlaps(net):  # type: ignore[arg-type]
            raise invalid_input(f"Requested subnet with cidr: {net} for network: {network_id} "
                                "overlaps with another subnet")


async def create_subnet(req: ApiRequest) -> Response:
    require_admin(req, "create_subnet")
    body = read_body(req, "subnet", SUBNET_ATTRS)
    network_id = body.get("network_id")
    if network_id is None:
        raise bad_request("Failed to parse request. Required attribute 'network_id' not "
                          "specified")
    if not isinstance(network_id, str):
        raise invalid_attr("network_id", f"'{network_id}' is not a valid UUID")
    net = parse_cidr(body)
    version = parse_version(body, net)
    gateway = parse_gateway(body, net)
    pools = parse_pools(body, net)
    if pools is None:
        pools = default_pools(net, gateway)
    else:
        check_gateway_outside(gateway, pools)
    name = string(body, "name")
    subnet_id = common.new_id()
    with req.app.engine.begin() as conn:
        fetch(conn, req, NETWORK, network_id, lock=True)
        check_overlap(conn, network_id, net)
        conn.execute(t.subnet.insert().values(
            id=subnet_id, project_id=owner(req, body), network_id=network_id, name=name,
            cidr=str(net), ip_version=version,
            gateway_ip=None if gateway is None else str(gateway),
            allocation_pools=[{"start": str(s), "end": str(e)} for s, e in pools],
            created_at=common.utcnow()))
        row = fetch(conn, req, SUBNET, subnet_id)
    return Response(201, {"subnet": render_subnet(row)})


async def delete_subnet(req: ApiRequest) -> Response:
    subnet_id = req.path_params["id"]
    with req.app.engine.begin() as conn:
        fetch(conn, req, SUBNET, subnet_id, lock=True)
        require_admin(req, "delete_subnet")
        if subnet_used(conn, subnet_id):
            raise subnet_in_use(subnet_id)
        conn.execute(delete(t.subnet).where(t.subnet.c.id == subnet_id))
    return Response(204)


# ------------------------------------------------------------------------------- discovery --

RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("floatingip", "floatingips"))


async def versions(req: ApiRequest) -> Response:
    href = f"{req.base_url}{API}/"
    return Response(200, {"versions": [
        {"id": "v2.0", "status": "CURRENT", "links": [{"href": href, "rel": "self"}]}]})


async def v2_index(req: ApiRequest) -> Response:
    base = f"{req.base_url}{API}"
    return Response(200, {"resources": [
        {"name": name, "collection": plural,
         "links": [{"href": f"{base}/{plural}", "rel": "self"}]}
        for name, plural in RESOURCES]})


async def extensions(req: ApiRequest) -> Response:
    # No Neutron extensions are implemented; clients probe this list before using one.
    return Response(200, {"extensions": []})


def register(router: Router) -> None:
    router.add("GET", PREFIX, versions)
    router.add("GET", API, v2_index)
    router.add("GET", API + "/extensions", extensions)
    for kind in (NETWORK, SUBNET, PORT):
        router.add("GET", f"{API}/{kind.plural}", list_handler(kind))
        router.add("GET", f"{API}/{kind.plural}/{{id}}", show_handler(kind))
    router.add("POST", f"{API}/networks", create_network)
    router.add("DELETE", f"{API}/networks/{{id}}", delete_network)
    router.add("POST", f"{API}/subnets", create_subnet)
    router.add("DELETE", f"{API}/subnets/{{id}}", delete_subnet)
    from lbaas.api.resources import floatingips  # it builds on this module's helpers

    floatingips.register(router)
