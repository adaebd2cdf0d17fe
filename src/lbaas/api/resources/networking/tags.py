"""Neutron's tag sub-resource (``standard-attr-tag`` and ``tag-creation``) on networks, subnets
and ports: ``GET/PUT/POST/DELETE /<plural>/<id>/tags`` and ``GET/PUT/DELETE …/tags/<tag>``.

Statuses, bodies and limits are Neutron's (``neutron/extensions/tagging.py``): the whole list is
replaced by PUT (200, echoing the list sent), merged by POST (201), one tag is added by PUT
(201, idempotent) and removed by DELETE (204, 404 ``TagNotFound`` when absent); at most 50 tags
of at most 255 characters. Reading needs what showing the resource needs; changing needs the
member role on the resource's project (for a subnet, also its network's). Tags live in the
``tag`` table the load-balancer objects use; every change bumps ``revision_number``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, delete, insert

from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources.networking.access import authorize, fetch, network_owner
from lbaas.api.resources.networking.errors import NeutronError, bad_resource, invalid_input
from lbaas.api.resources.networking.kinds import Kind, save
from lbaas.api.resources.networking.listing import API
from lbaas.store import tables as t
from lbaas.store.listing import set_tags, tags_for

MAX_TAG_LEN = 255
MAX_TAGS = 50


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str):
        raise invalid_input(f"'{tag}' is not a valid string")
    if len(tag) > MAX_TAG_LEN:
        raise invalid_input(f"'{tag}' exceeds maximum length of {MAX_TAG_LEN}")
    return tag


def parse_tags(kind: Kind, value: Any) -> list[str]:
    """A list of unique tags (also what a port's create body may carry)."""
    if not isinstance(value, list):
        raise invalid_input(f"'{value}' is not a list")
    seen: list[str] = []
    for tag in value:
        if tag in seen:
            raise invalid_input(f"Duplicate items in the list: '{tag}'")
        seen.append(_check_tag(tag))
    check_count(kind, seen)
    return seen


def check_count(kind: Kind, tags: list[str]) -> None:
    if len(set(tags)) > MAX_TAGS:
        raise bad_resource(kind.plural, "The number of tags exceed the per-resource limit of "
                           f"{MAX_TAGS}")


def _body_tags(req: ApiRequest, kind: Kind) -> list[str]:
    try:
        data = req.json()
    except ApiError:
        data = None
    if not isinstance(data, dict) or "tags" not in data:
        raise invalid_input("Invalid tags body")
    return parse_tags(kind, data["tags"])


def _owners(conn: Connection, kind: Kind, row: Row[Any]) -> tuple[str | None, ...]:
    if kind.table is t.subnet:
        return row.project_id, network_owner(conn, row.network_id)
    return (row.project_id,)


def _current(conn: Connection, resource_id: str) -> list[str]:
    return tags_for(conn, [resource_id])[resource_id]


def _writable(conn: Connection, req: ApiRequest, kind: Kind, verb: str) -> Row[Any]:
    row = fetch(conn, req, kind, req.path_params["id"], lock=True)
    authorize(req, f"{verb}_{kind.singular}:tags", *_owners(conn, kind, row))
    return row


def handlers(kind: Kind) -> dict[tuple[str, str], Callable[[ApiRequest], Any]]:
    async def index(req: ApiRequest) -> Response:
        with req.app.engine.connect() as conn:
            row = fetch(conn, req, kind, req.path_params["id"])
            return Response(200, {"tags": _current(conn, row.id)})

    async def show(req: ApiRequest) -> Response:
        tag = _check_tag(req.path_params["tag"])
        with req.app.engine.connect() as conn:
            row = fetch(conn, req, kind, req.path_params["id"])
            if tag not in _current(conn, row.id):
                raise NeutronError("TagNotFound", f"Tag {tag} could not be found.", 404)
        return Response(204)

    async def replace(req: ApiRequest) -> Response:
        tags = _body_tags(req, kind)
        with req.app.engine.begin() as conn:
            row = _writable(conn, req, kind, "update")
            set_tags(conn, row.id, tags)
            save(conn, kind, row.id, {})
        return Response(200, {"tags": tags})

    async def add_many(req: ApiRequest) -> Response:
        tags = _body_tags(req, kind)
        with req.app.engine.begin() as conn:
            row = _writable(conn, req, kind, "create")
            merged = sorted(set(_current(conn, row.id)) | set(tags))
            check_count(kind, merged)
            set_tags(conn, row.id, merged)
            save(conn, kind, row.id, {})
        return Response(201, {"tags": tags})

    async def add_one(req: ApiRequest) -> Response:
        tag = _check_tag(req.path_params["tag"])
        with req.app.engine.begin() as conn:
            row = _writable(conn, req, kind, "update")
            current = _current(conn, row.id)
            if tag not in current:
                check_count(kind, [*current, tag])
                conn.execute(insert(t.tag).values(resource_id=row.id, tag=tag))
                save(conn, kind, row.id, {})
        return Response(201)

    async def remove_all(req: ApiRequest) -> Response:
        with req.app.engine.begin() as conn:
            row = _writable(conn, req, kind, "delete")
            set_tags(conn, row.id, [])
            save(conn, kind, row.id, {})
        return Response(204)

    async def remove_one(req: ApiRequest) -> Response:
        tag = _check_tag(req.path_params["tag"])
        with req.app.engine.begin() as conn:
            row = _writable(conn, req, kind, "delete")
            gone = conn.execute(delete(t.tag).where(t.tag.c.resource_id == row.id,
                                                    t.tag.c.tag == tag))
            if not gone.rowcount:
                raise NeutronError("TagNotFound", f"Tag {tag} could not be found.", 404)
            save(conn, kind, row.id, {})
        return Response(204)

    return {("GET", ""): index, ("PUT", ""): replace, ("POST", ""): add_many,
            ("DELETE", ""): remove_all, ("GET", "/{tag}"): show, ("PUT", "/{tag}"): add_one,
            ("DELETE", "/{tag}"): remove_one}


def register(router: Router, kind: Kind) -> None:
    base = f"{API}/{kind.plural}/{{id}}/tags"
    for (method, suffix), handler in handlers(kind).items():
        router.add(method, base + suffix, handler)


def delete_tags(conn: Connection, resource_id: str) -> None:
    conn.execute(delete(t.tag).where(t.tag.c.resource_id == resource_id))

