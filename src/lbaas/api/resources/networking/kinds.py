"""What the generic list/show/tag handlers need to know about a Neutron resource.

Each resource module (networks, subnets, ports, and floatingips outside the package) describes
itself with one ``Kind``: its names, table, renderer and the attributes a list can filter on.
The attribute set is read off the renderer itself, so filters follow what is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Row, Table, update

from lbaas.api import common
from lbaas.api.resources.networking.errors import NeutronError, not_found
from lbaas.store.listing import tags_for

Renderer = Callable[[Connection, list[Row[Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Kind:
    singular: str
    plural: str
    table: Table
    label: str
    render_many: Renderer
    attributes: frozenset[str]

    def not_found(self, ident: str) -> NeutronError:
        return not_found(self.label, ident)


def stamp(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def audit(row: Any) -> dict[str, Any]:
    """Neutron's standard attributes every resource shows."""
    return {"created_at": stamp(row.created_at),
            "updated_at": stamp(row.updated_at or row.created_at),
            "revision_number": getattr(row, "revision_number", None) or 0}


def with_tags(render: Callable[[Any, list[str]], dict[str, Any]]) -> Renderer:
    """A renderer for many rows from one for a row and its tags (read in one query)."""
    def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
        tag_lists = tags_for(conn, [r.id for r in rows])
        return [render(r, tag_lists[r.id]) for r in rows]

    return render_many


def attributes_of(table: Table, render: Callable[[Any], dict[str, Any]]) -> frozenset[str]:
    """The attribute names ``render`` produces, read off an all-empty row."""
    sample = SimpleNamespace(**{c.name: None for c in table.c})
    sample.allocation_pools = sample.fixed_ips = []
    return frozenset(render(sample))


def save(conn: Connection, kind: Kind, ident: str, values: dict[str, Any]) -> None:
    """Write a change; Neutron bumps the revision (and updated_at) on every one, tags too."""
    table = kind.table
    conn.execute(update(table).where(table.c.id == ident).values(
        **values, revision_number=table.c.revision_number + 1, updated_at=common.utcnow()))
