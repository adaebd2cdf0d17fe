"""One description per load-balancing resource: what the shared handlers in ``crud`` need.

A ``Resource`` names the table, the JSON keys, the field schema, the renderer and the hooks
for what differs between resources (how a row is found under its parent, how an update or a
delete is authorized, validated and cascaded to the parents). Create stays each module's own
handler: its validation and its INSERTs are per resource and on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, Table

from lbaas.api import common, listing
from lbaas.api.http import ApiRequest
from lbaas.api.schema import Field, envelope_openapi


class Target(NamedTuple):
    """An object a PUT or DELETE changes, after its parents were locked and marked."""

    row: Row[Any]  # the object as stored
    lb: Row[Any]  # its load balancer (locked); the controller is notified for it
    values: dict[str, Any] = {}  # read only: the columns a PUT writes


@dataclass(frozen=True)
class Parent:
    """The object a child lives under in the path (``/pools/{pool_id}/members``)."""

    table: Table
    param: str  # the path parameter naming it
    label: str  # as in the 404 ("Pool", "L7Policy")
    wraps_create: bool = True  # False: the create looks its parent up itself


RenderMany = Callable[[Connection, list[Row[Any]]], list[dict[str, Any]]]
Find = Callable[[Connection, ApiRequest], Row[Any]]
PrepareUpdate = Callable[[Connection, ApiRequest, str, dict[str, Any]], Target]
PrepareDelete = Callable[[Connection, ApiRequest, str], Target]


@dataclass(frozen=True)
class Resource:
    """A resource of ``/v2/lbaas``: its names, table, schema, rendering and hooks."""

    module: str  # the owning module: OpenAPI reads OPENAPI and COLLECTION there
    policy: str  # policy target ("healthmonitor", "l7rule")
    envelope: str  # JSON key of one object ("healthmonitor", "rule")
    label: str  # its name in 404s ("Health Monitor")
    table: Table
    path: str  # the collection's route
    fields: tuple[Field, ...]
    collection: listing.Collection
    render_many: RenderMany
    parent: Parent | None = None
    list_where: Callable[[], Sequence[Any]] = tuple  # extra WHERE of the generic list
    find: Find | None = None  # the row GET shows; default: by the path's id
    prepare_update: PrepareUpdate | None = None  # authorize, validate, lock: the Target
    after_update: Callable[[Connection, Target, dict[str, Any]], None] | None = None
    prepare_delete: PrepareDelete | None = None
    after_delete: Callable[[Connection, Target], None] | None = None
    openapi_extra: dict[str, Any] = field(default_factory=dict)

    def row(self, conn: Connection, ident: str) -> Row[Any]:
        return common.get_row(conn, self.table, ident, self.label)

    def load_view(self, conn: Connection, ident: str) -> dict[str, Any]:
        return self.render_many(conn, [self.row(conn, ident)])[0]

    def openapi(self) -> dict[str, Any]:
        """Request bodies of the create and update, as ``openapi`` reads them."""
        return {"create": envelope_openapi(self.envelope, self.fields, "create"),
                "update": envelope_openapi(self.envelope, self.fields, "update"),
                **self.openapi_extra}
