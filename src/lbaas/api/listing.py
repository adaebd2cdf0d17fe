"""Query-string handling shared by every list endpoint (Octavia's pagination helper).

Parses ``limit``/``marker``/``page_reverse``, ``sort``/``sort_key``/``sort_dir``, attribute
filters, the four tag filters and ``fields``; builds the ``<plural>_links`` array with
upstream's quirks (filters are not carried into links; ``next`` also when unlimited).

Key choice: as upstream (whose filters are the data model's attributes), every stored scalar
attribute of a collection is a filter and a sort key, under its API name and the aliases
upstream accepts (``enabled`` for ``admin_state_up``, ``loadbalancer_id`` for
``load_balancer_id``); a collection lists only what it renames, hides, or derives from another
table. Errors follow upstream's split: limit and sort direction are checked in a pecan hook
(webob bodies), sort keys, markers and filters in the handler (WSME bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import JSON, ColumnElement, Connection, Table, select

from lbaas.api.errors import BadRequest, hook_error
from lbaas.api.http import ApiRequest
from lbaas.store.listing import BadFilterValue, ListQuery, coerce_filter

AUX_PARAMS = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir", "fields",
                        "page_reverse"})
TAG_PARAMS = {"tags": "tags_all", "tags-any": "tags_any", "not-tags": "not_tags_all",
              "not-tags-any": "not_tags_any"}
BAD_FILTER = "One or more arguments are either duplicate or invalid"
# API aliases upstream translates before filtering (``_type_to_db_map`` and the pagination
# helper's own ``loadbalancer_id``)
ALIASES = {"enabled": "admin_state_up", "loadbalancer_id": "load_balancer_id"}
DEFAULT_SORT_DIR = "asc"
LINK_SAFE = ":,"  # upstream writes sort=name:asc,id:desc into its links unquoted
# Beyond upstream (whose database then fails with a 500): a query names at most this many sort
# keys and tag filter values (docs/security.md).
MAX_SORT_KEYS = 50
MAX_TAG_FILTERS = 100


@dataclass(frozen=True)
class Collection:
    """What the list machinery needs to know about one collection."""

    table: Table
    plural: str
    links_key: str
    # API attribute name -> column, where the API spells a column differently
    renames: Mapping[str, str] = field(default_factory=dict)
    # internal columns: neither filters nor sort keys
    hidden: frozenset[str] = frozenset()
    # attributes stored in another table: name -> (value -> condition on this table)
    derived: Mapping[str, Callable[[str], ColumnElement[bool]]] = field(default_factory=dict)
    has_tags: bool = True
    extra_filters: frozenset[str] = field(default_factory=frozenset)
    # API attribute name -> column, for filtering and sorting (computed)
    columns: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        columns = {str(col.name): str(col.name) for col in self.table.c
                   if col.name not in self.hidden and not isinstance(col.type, JSON)}
        for name, col in {**ALIASES, **self.renames}.items():
            if col in columns:
                columns[name] = col
        object.__setattr__(self, "columns", columns)


def split_multi(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(p for p in (s.strip() for s in v.split(",")) if p)
    return out


def parse_limit(req: ApiRequest, max_limit: int | None) -> int | None:
    raw = req.param("limit")
    if raw is None:
        return max_limit
    if raw == "infinite":
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise hook_error(400, f"Supplied pagination limit '{raw}' is not valid.") from None
    if limit <= 0:
        return None
    if limit >= 2**63:  # more rows than any database holds (and more than its LIMIT takes)
        return max_limit
    if max_limit is not None and limit > max_limit:
        return max_limit
    return limit


def _direction(raw: str) -> str:
    direction = raw.lower()
    if direction not in ("asc", "desc"):
        raise hook_error(400, f"Supplied sort direction '{direction}' is not valid.")
    return direction


def _requested_sort(req: ApiRequest) -> list[tuple[str, str]]:
    """(key, direction) pairs as upstream's helper reads them, before the keys are checked."""
    sort = req.param("sort")
    if sort:
        keys = []
        for part in sort.split(","):
            comps = part.split(":")
            if len(comps) > 2:
                raise hook_error(400, f"Supplied sort key '{comps}' is not valid.")
            keys.append((comps[0], _direction(comps[1]) if len(comps) == 2
                         else DEFAULT_SORT_DIR))
        return keys
    sort_keys = split_multi(req.params("sort_key"))
    sort_dirs = split_multi(req.params("sort_dir"))
    sort_dirs += [DEFAULT_SORT_DIR] * (len(sort_keys) - len(sort_dirs))
    return [(key, _direction(d)) for key, d in zip(sort_keys, sort_dirs, strict=False)]


def parse_sort(req: ApiRequest, coll: Collection) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    requested = _requested_sort(req)
    if len(requested) > MAX_SORT_KEYS:
        raise BadRequest(f"Too many sort keys: {len(requested)} (at most {MAX_SORT_KEYS}).")
    names: set[str] = set()
    for key, direction in requested:
        if key not in coll.columns:
            raise BadRequest(f"Supplied sort key '{key}' is not valid.")
        column = coll.columns[key]
        if column not in names:  # a repeated key cannot change the order
            names.add(column)
            out.append((column, direction))
    for tie in ("created_at", "id"):
        if tie in coll.table.c and tie not in names:
            out.append((tie, DEFAULT_SORT_DIR))
    return out


def build_query(conn: Connection, req: ApiRequest, coll: Collection,
                max_limit: int | None) -> ListQuery:
    q = ListQuery(limit=parse_limit(req, max_limit), sort=parse_sort(req, coll))
    q.page_reverse = req.param("page_reverse") == "True"
    for key, value in req.query:
        if key in AUX_PARAMS or key in coll.extra_filters:
            continue
        if key in TAG_PARAMS:  # ignored where there are no tags, as upstream
            if coll.has_tags:
                getattr(q, TAG_PARAMS[key]).extend(split_multi([value]))
            continue
        if key in coll.derived:
            q.where.append(coll.derived[key](value))
            continue
        column = coll.columns.get(key)
        if column is None:
            raise BadRequest(BAD_FILTER)
        try:
            q.filters[column] = coerce_filter(coll.table, column, value)
        except BadFilterValue:
            raise BadRequest(BAD_FILTER) from None
    tag_values = len(q.tags_all) + len(q.tags_any) + len(q.not_tags_all) + len(q.not_tags_any)
    if tag_values > MAX_TAG_FILTERS:
        raise BadRequest(f"Too many tags in the tag filters: {tag_values} "
                         f"(at most {MAX_TAG_FILTERS}).")
    marker = req.param("marker")
    if marker:
        row = conn.execute(select(coll.table).where(coll.table.c[pk_name(coll.table)] == marker))\
            .first()
        if row is None:
            raise BadRequest(f"Supplied pagination marker '{marker}' is not valid.")
        q.marker_row = row
    return q


def pk_name(table: Table) -> str:
    return "id" if "id" in table.c else next(iter(table.primary_key.columns)).name


def links(req: ApiRequest, q: ListQuery, rows: Sequence[Any], base_uri: str | None,
          key: str = "id") -> list[dict[str, str]]:
    base = (base_uri.rstrip("/") + req.path) if base_uri else req.url
    common: list[tuple[str, str]] = []
    if q.limit is not None:
        common.append(("limit", str(q.limit)))
    if req.param("sort"):
        common.append(("sort", req.param("sort") or ""))
    for sk in req.params("sort_key"):
        common.append(("sort_key", sk))
    out: list[dict[str, str]] = []
    if not rows:
        return out
    if req.param("marker"):
        prev = [*common, ("marker", getattr(rows[0], key)), ("page_reverse", "True")]
        out.append({"href": f"{base}?{urlencode(prev, safe=LINK_SAFE)}", "rel": "previous"})
    if q.limit is None or len(rows) >= q.limit:
        nxt = [*common, ("marker", getattr(rows[-1], key))]
        out.append({"href": f"{base}?{urlencode(nxt, safe=LINK_SAFE)}", "rel": "next"})
    return out


def requested_fields(req: ApiRequest) -> list[str] | None:
    values = req.params("fields")
    if not values:
        return None
    return split_multi(values)


def select_fields(obj: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    if wanted is None:
        return obj
    return {k: obj[k] for k in wanted if k in obj}
