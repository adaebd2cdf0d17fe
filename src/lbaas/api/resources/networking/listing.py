"""Neutron's list and show: filters on any attribute, tag filters, sorting, paging, ``fields``.

Lists are small (a handful of networks, a few ports per load balancer), so filtering, sorting
and paging run over rendered objects, which gives Neutron's "filter on any attribute" semantics
for free; visibility is applied in SQL first (``access.visible``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources.networking.access import fetch, visible
from lbaas.api.resources.networking.bodies import as_bool
from lbaas.api.resources.networking.errors import bad_request
from lbaas.api.resources.networking.kinds import Kind

PREFIX = "/networking"
API = PREFIX + "/v2.0"
PAGING_PARAMS = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"})
TAG_FILTERS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
LIST_ATTRIBUTES = frozenset({"subnets", "allocation_pools", "fixed_ips", "tags",
                             "dns_nameservers", "host_routes", "service_types",
                             "availability_zone_hints", "availability_zones",
                             "allowed_address_pairs", "security_groups", "extra_dhcp_opts",
                             "port_forwardings"})


def _matches(value: Any, key: str, wanted: list[str]) -> bool:
    """Neutron's filter semantics: several values for one attribute mean "any of them"."""
    if isinstance(value, bool):
        return value in {as_bool(w) for w in wanted}
    if key == "fixed_ips":
        pairs = [w.split("=", 1) for w in wanted]
        if any(len(p) != 2 or p[0] not in ("ip_address", "subnet_id") for p in pairs):
            raise bad_request("Invalid fixed_ips filter: use ip_address=X or subnet_id=X")
        return any(f.get(k) == v for f in value for k, v in pairs)
    if isinstance(value, list):
        return any(w in value for w in wanted)
    text = "" if value is None else str(value)
    return text in wanted


def _tags_match(tags: list[str], key: str, wanted: list[str]) -> bool:
    """``tags=a,b``: all of them; ``tags-any``: one of them; ``not-`` negates."""
    names = {n for w in wanted for n in w.split(",") if n}
    found = names <= set(tags) if key in ("tags", "not-tags") else bool(names & set(tags))
    return not found if key.startswith("not-") else found


def apply_filters(req: ApiRequest, kind: Kind, items: list[dict[str, Any]]) \
        -> list[dict[str, Any]]:
    filters: dict[str, list[str]] = {}
    for key, value in req.query:
        if key not in PAGING_PARAMS:
            filters.setdefault(key, []).append(value)
    for key in filters:
        if key not in kind.attributes and not ("tags" in kind.attributes and key in TAG_FILTERS):
            raise bad_request(f"{key} is invalid attribute for filtering")

    def keep(item: dict[str, Any]) -> bool:
        return all(_tags_match(item["tags"], k, v) if k in TAG_FILTERS
                   else _matches(item[k], k, v) for k, v in filters.items())

    return [i for i in items if keep(i)]


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


def list_response(req: ApiRequest, kind: Kind, items: list[dict[str, Any]]) -> Response:
    items = apply_sort(req, kind, apply_filters(req, kind, items))
    page, links = paginate(req, kind, items)
    body: dict[str, Any] = {kind.plural: [select_fields(req, i) for i in page]}
    if links:
        body[f"{kind.plural}_links"] = links
    return Response(200, body)


def list_handler(kind: Kind) -> Callable[[ApiRequest], Any]:
    async def handler(req: ApiRequest) -> Response:
        table = kind.table
        with req.app.engine.connect() as conn:
            rows = list(conn.execute(select(table).where(*visible(req, table))
                                     .order_by(table.c.created_at, table.c.id)))
            items = kind.render_many(conn, rows)
        return list_response(req, kind, items)

    return handler


def show_handler(kind: Kind) -> Callable[[ApiRequest], Any]:
    async def handler(req: ApiRequest) -> Response:
        with req.app.engine.connect() as conn:
            row = fetch(conn, req, kind, req.path_params["id"])
            item = kind.render_many(conn, [row])[0]
        return Response(200, {kind.singular: select_fields(req, item)})

    return handler
