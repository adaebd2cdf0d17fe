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

from sqlalchemy import Connection, Row, Table

from lbaas.api.resources.networking.errors import NeutronError, not_found

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


def attributes_of(table: Table, render: Callable[[Any], dict[str, Any]]) -> frozenset[str]:
    """The attribute names ``render`` produces, read off an all-empty row."""
    sample = SimpleNamespace(**{c.name: None for c in table.c})
    sample.allocation_pools = sample.fixed_ips = []
    return frozenset(render(sample))
