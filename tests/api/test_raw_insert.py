"""``store.raw_insert``: the driver-cursor INSERT behaves as ``Connection.execute`` would, on
each database the suite runs on (defaults, JSON, booleans, errors, no transaction)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lbaas.store import raw_insert
from lbaas.store import tables as t


def test_insert_matches_execute(api: Any) -> None:
    engine = api.service.engine
    with engine.connect() as conn:
        network_id = conn.execute(select(t.network.c.id)).scalars().first()
    assert network_id is not None
    rows = {}
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    for port_id, via_raw in (("raw-port", True), ("sa-port", False)):
        values = {"id": port_id, "network_id": network_id, "name": "p", "project_id": None,
                  "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.9"}],
                  "mac_address": "fa:16:3e:00:00:01", "created_at": now}
        with engine.begin() as conn:
            if via_raw:
                raw_insert.insert(conn, t.port, values)
            else:
                conn.execute(t.port.insert(), values)
        with engine.connect() as conn:
            rows[port_id] = conn.execute(select(t.port).where(t.port.c.id == port_id)).one()
    raw, plain = rows["raw-port"]._asdict(), rows["sa-port"]._asdict()
    assert raw.pop("id") == "raw-port" and plain.pop("id") == "sa-port"
    assert raw == plain
    assert raw["admin_state_up"] is True  # the column's Python default, as execute applies

def test_duplicate_is_integrity_error_and_rolls_back(api: Any) -> None:
    engine = api.service.engine
    values = {"subnet_id": "sub", "ip_address": "10.9.9.9", "port_id": "p1"}
    with engine.begin() as conn:
        raw_insert.insert(conn, t.ip_allocation, values)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        raw_insert.insert(conn, t.ip_allocation, {**values, "port_id": "p2"})
    with engine.connect() as conn:
        owners = conn.execute(select(t.ip_allocation.c.port_id)
                              .where(t.ip_allocation.c.subnet_id == "sub")).scalars().all()
    assert owners == ["p1"]
