"""Quotas: per-project limits, shown raw in the list and effective (defaults filled) per project.

Key choices: a quota row stores ``null`` for "use the deployment default"; DELETE keeps the
row and nulls every limit (upstream), so only a project that never had a row gives 404. Every
view shows the defaults filled in. Both
spellings of the two renamed keys are accepted and always emitted. ``/quotas/defaults`` is a
route of its own (upstream reaches it by treating "defaults" as a project id, which makes
ordinary users fail the RBAC check although every client calls it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from lbaas.api import common, listing
from lbaas.api.errors import BadRequest, NotFound
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources import providers
from lbaas.api.schema import Field, Int, String, envelope_openapi, parse_envelope
from lbaas.domain import constants as c
from lbaas.store import tables as t

RESOURCE = "quota"

# storage column -> API names (the canonical spelling first; it wins when both are sent)
API_NAMES: dict[str, tuple[str, ...]] = {
    "load_balancer": ("loadbalancer", "load_balancer"),
    "listener": ("listener",),
    "pool": ("pool",),
    "health_monitor": ("healthmonitor", "health_monitor"),
    "member": ("member",),
    "l7policy": ("l7policy",),
    "l7rule": ("l7rule",),
}

FIELDS = tuple(Field(name, Int(-1, c.MAX_QUOTA)) for names in API_NAMES.values()
               for name in names)

COLLECTION = listing.Collection(
    t.quota, "quotas", "quotas_links", has_tags=False, extra_filters=frozenset({"tenant_id"}),
    renames={name: col for col, names in API_NAMES.items() for name in names})


def render(project_id: str, values: dict[str, int | None]) -> dict[str, Any]:
    out: dict[str, Any] = {"project_id": project_id, "tenant_id": project_id}
    for col, names in API_NAMES.items():
        for name in names:
            out[name] = values[col]
    return out


def raw_values(row: Row[Any] | None) -> dict[str, int | None]:
    return {col: (getattr(row, col) if row is not None else None) for col in API_NAMES}


def defaults(req: ApiRequest) -> dict[str, int | None]:
    settings = req.app.settings.quotas
    return {col: getattr(settings, f"default_{col}_quota") for col in API_NAMES}


def effective(req: ApiRequest, row: Row[Any] | None) -> dict[str, int | None]:
    fallback = defaults(req)
    return {col: (fallback[col] if value is None else value)
            for col, value in raw_values(row).items()}


def _row(conn: Connection, project_id: str, lock: bool = False) -> Row[Any] | None:
    stmt = select(t.quota).where(t.quota.c.project_id == project_id)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def _requested(body: dict[str, Any]) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for col, names in API_NAMES.items():
        for name in reversed(names):  # canonical spelling last, so it wins
            if name in body:
                values[col] = body[name]
    return values


async def get_all(req: ApiRequest) -> Response:
    """List the projects that have a quota row, with their effective limits.

    Upstream's rows hold the defaults once a PUT or DELETE has read them back (its ORM writes
    the filled-in values), so its list never shows null; ``fields`` is not applied here."""
    scope = common.scope_list(req, RESOURCE)

    def render_many(_conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
        return [render(r.project_id, effective(req, r)) for r in rows]

    return providers.list_global(req, COLLECTION, render_many, key="project_id",
                                 filters=scope, select_fields=False)


async def get_defaults(req: ApiRequest) -> Response:
    """Show the deployment's default quotas."""
    common.authorize(req, RESOURCE, "get_defaults", req.context.project_id)
    return Response(200, {"quota": render("defaults", defaults(req))})


async def get_project_defaults(req: ApiRequest) -> Response:
    """Show the default quotas as they apply to a project."""
    project_id = req.path_params["project_id"]
    common.authorize(req, RESOURCE, "get_defaults", project_id)
    return Response(200, {"quota": render(project_id, defaults(req))})


async def get_one(req: ApiRequest) -> Response:
    """Show a project's effective quotas (its own limits, else the defaults)."""
    if req.query:  # WSME: the handler takes no query arguments, not even ``fields``
        raise BadRequest(f'Unknown argument: "{", ".join(dict.fromkeys(k for k, _ in req.query))}"')
    project_id = req.path_params["project_id"]
    common.authorize(req, RESOURCE, "get_one", project_id)
    with req.app.engine.connect() as conn:
        row = _row(conn, project_id)
    return Response(200, {"quota": render(project_id, effective(req, row))})


def _store(req: ApiRequest, project_id: str, values: dict[str, int | None]) -> Row[Any]:
    """Insert or update the project's row; a concurrent first insert is retried as update."""
    for attempt in range(2):
        try:
            with req.app.engine.begin() as conn:
                if _row(conn, project_id, lock=True) is None:
                    conn.execute(t.quota.insert().values(project_id=project_id, **values))
                elif values:
                    conn.execute(update(t.quota).where(t.quota.c.project_id == project_id)
                                 .values(**values))
                row = _row(conn, project_id)
                assert row is not None
                return row
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def put(req: ApiRequest) -> Response:
    """Set any subset of a project's quotas (null = back to the default)."""
    body = parse_envelope(req.json(), "quota", FIELDS, "update")
    project_id = String(36).validate("project_id", req.path_params["project_id"])
    common.authorize(req, RESOURCE, "put", project_id)
    row = _store(req, project_id, _requested(body))
    return Response(202, {"quota": render(project_id, effective(req, row))})


async def delete_one(req: ApiRequest) -> Response:
    """Reset every quota of a project to the default."""
    project_id = req.path_params["project_id"]
    common.authorize(req, RESOURCE, "delete", project_id)
    with req.app.engine.begin() as conn:
        if _row(conn, project_id, lock=True) is None:
            raise NotFound("Quotas", project_id)
        conn.execute(update(t.quota).where(t.quota.c.project_id == project_id)
                     .values(**dict.fromkeys(API_NAMES)))
    return Response(202)


def register(router: Router) -> None:
    base = "/v2/lbaas/quotas"
    router.add("GET", base, get_all)
    # before {project_id} so "defaults" is never taken for a project
    router.add("GET", base + "/defaults", get_defaults)
    router.add("GET", base + "/{project_id}", get_one)
    router.add("PUT", base + "/{project_id}", put)
    router.add("DELETE", base + "/{project_id}", delete_one)
    router.add("GET", base + "/{project_id}/default", get_project_defaults)


OPENAPI = {"update": envelope_openapi("quota", FIELDS, "update")}
