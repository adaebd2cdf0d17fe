"""Shared list/show/update/delete handlers and routes for the ``spec.Resource`` descriptions.

Each handler owns the request's skeleton (envelope parsing, the transaction, the status write,
tags, the response) and calls the resource's hooks for the rest, so statements run in the
same order and number as in a hand-written handler. The handlers carry their resource
module's name, so the OpenAPI document (which reads ``__module__``/``__name__``) is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update

from lbaas.api import common
from lbaas.api.http import ApiRequest, Handler, Response, Router
from lbaas.api.resources.spec import Resource
from lbaas.api.schema import parse_envelope
from lbaas.domain import constants as c
from lbaas.store.listing import set_tags


def named(module: str, name: str, handler: Handler, doc: str | None = None) -> Handler:
    """``handler`` as if defined as ``name`` in ``module``: OpenAPI reads the module's
    OPENAPI and COLLECTION, tags the operation with it and takes the summary from ``doc``
    (none: "<METHOD> <path>")."""
    handler.__module__ = module
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return handler


def _named(res: Resource, name: str, handler: Handler) -> Handler:
    return named(res.module, name, handler)


def add_routes(router: Router, base: str, get_all_: Handler, create: Handler,
               get_one_: Handler, put_: Handler, delete_: Handler, key: str = "id") -> None:
    """The five routes of a collection at ``base`` whose objects are ``{key}`` below it."""
    one = f"{base}/{{{key}}}"
    for method, path, handler in (("GET", base, get_all_), ("POST", base, create),
                                  ("GET", one, get_one_), ("PUT", one, put_),
                                  ("DELETE", one, delete_)):
        router.add(method, path, handler)


def get_all(res: Resource) -> Handler:
    async def handler(req: ApiRequest) -> Response:
        return common.list_response(req, res.collection, res.policy, res.render_many,
                                    res.list_where())

    return _named(res, "get_all", handler)


def get_one(res: Resource) -> Handler:
    async def handler(req: ApiRequest) -> Response:
        with req.app.engine.connect() as conn:
            row = (res.find(conn, req) if res.find is not None
                   else res.row(conn, req.path_params["id"]))
            view = res.render_many(conn, [row])[0]
        common.authorize(req, res.policy, "get_one", view["project_id"])
        return common.one_response(req, res.envelope, view)

    return _named(res, "get_one", handler)


def put(res: Resource) -> Handler:
    """PUT: the hook authorizes, validates and locks; the object goes PENDING_UPDATE."""
    assert res.prepare_update is not None
    prepare, after = res.prepare_update, res.after_update
    table = res.table

    async def handler(req: ApiRequest) -> Response:
        body = parse_envelope(req.json(), res.envelope, res.fields, "update")
        ident = req.path_params["id"]
        state = req.app
        with state.engine.begin() as conn:
            target = prepare(conn, req, ident, body)
            conn.execute(update(table).where(table.c.id == ident).values(
                provisioning_status=c.PENDING_UPDATE, updated_at=common.utcnow(),
                **target.values))
            if after is not None:
                after(conn, target, body)
            if "tags" in body:
                set_tags(conn, ident, body["tags"])
            view = res.load_view(conn, ident)
        state.notify(target.lb.id)
        return Response(200, {res.envelope: view})

    return _named(res, "put", handler)


def delete(res: Resource) -> Handler:
    """DELETE: the hook authorizes and locks; the object goes PENDING_DELETE."""
    assert res.prepare_delete is not None
    prepare, after = res.prepare_delete, res.after_delete

    async def handler(req: ApiRequest) -> Response:
        ident = req.path_params["id"]
        state = req.app
        with state.engine.begin() as conn:
            target = prepare(conn, req, ident)
            common.set_status(conn, res.table, [ident], c.PENDING_DELETE)
            if after is not None:
                after(conn, target)
        state.notify(target.lb.id)
        return Response(204)

    return _named(res, "delete", handler)


Route = tuple[str, str, Handler]  # method, path below the collection's, handler


@dataclass(frozen=True)
class Handlers:
    """A resource's five CRUD handlers (generic unless given) and its extra routes."""

    res: Resource
    create: Handler
    get_all: Handler
    get_one: Handler
    put: Handler
    delete: Handler
    collection_routes: Sequence[Route] = ()  # after POST (members' batch PUT)
    item_routes: Sequence[Route] = ()  # after DELETE (stats, status, failover)

    def register(self, router: Router) -> None:
        base, one = self.res.path, self.res.path + "/{id}"
        routes = [("GET", base, self.get_all), ("POST", base, self.create),
                  *((m, base + p, h) for m, p, h in self.collection_routes),
                  ("GET", one, self.get_one), ("PUT", one, self.put),
                  ("DELETE", one, self.delete),
                  *((m, one + p, h) for m, p, h in self.item_routes)]
        parent = self.res.parent
        for method, path, handler in routes:
            if parent is not None and (handler is not self.create or parent.wraps_create):
                handler = common.under_parent(handler, parent.table, parent.param,
                                              parent.label)
            router.add(method, path, handler)


def handlers(res: Resource, create: Handler, *, get_all_: Handler | None = None,
             put_: Handler | None = None, delete_: Handler | None = None,
             collection_routes: Sequence[Route] = (),
             item_routes: Sequence[Route] = ()) -> Handlers:
    """The resource's handlers: ``create`` and any ``*_`` given, the generic ones otherwise."""
    return Handlers(res, create, get_all_ or get_all(res), get_one(res), put_ or put(res),
                    delete_ or delete(res), collection_routes, item_routes)
