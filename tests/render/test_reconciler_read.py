"""The reconciler's one-statement read gives the same rows as reading the tables one by one.

On PostgreSQL the load balancer's row, every child row and the live amphorae come as one JSON
document (``aggregate.lb_read``, decoded by ``aggregate.read_lb``); render, the accepted
configuration and the settle step work from those rows, so they must equal what SQLAlchemy
returns table by table — JSON columns, booleans, the float ``http_version``, NULLs, order — for
objects made through the public API, some of them being deleted. Dates are the one difference
(ISO text in JSON); render and the configuration snapshot strip them.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from lbaas.controller import aggregate
from lbaas.controller.reconciler import LIVE_AMPHORAE

V2 = "/v2/lbaas"
DATES = ("created_at", "updated_at")
AMPHORA_DATES = (*DATES, "cert_expiration", "last_heartbeat")


def _post(api: Any, lb_id: str, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    code, data = api.post(f"{V2}/{path}", {kind: body})
    assert code == 201, data
    api.wait_lb(lb_id)
    return dict(data[kind])


def _undated(rows: aggregate.Rows) -> aggregate.Rows:
    return {name: [{k: v for k, v in r.items() if k not in DATES} for r in table_rows]
            for name, table_rows in rows.items()}


def _full_load_balancer(api: Any) -> str:
    lid = api.create_lb(name="read")["id"]
    http = _post(api, lid, "listeners", "listener", {
        "loadbalancer_id": lid, "protocol": "HTTP", "protocol_port": 80,
        "insert_headers": {"X-Forwarded-For": "true"}, "allowed_cidrs": ["192.0.2.0/24"],
        "timeout_member_connect": 1234})
    pool = _post(api, lid, "pools", "pool", {
        "listener_id": http["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": "s"}})
    spare = _post(api, lid, "pools", "pool", {
        "loadbalancer_id": lid, "protocol": "HTTP", "lb_algorithm": "SOURCE_IP"})
    for host, up in ((11, True), (12, False)):
        _post(api, lid, f"pools/{pool['id']}/members", "member", {
            "address": f"10.0.0.{host}", "protocol_port": 8080, "admin_state_up": up,
            "backup": not up})
    _post(api, lid, f"pools/{spare['id']}/members", "member",
          {"address": "10.0.0.21", "protocol_port": 80})
    _post(api, lid, "healthmonitors", "healthmonitor", {
        "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2,
        "http_version": 1.1, "domain_name": "app.example.com"})
    policy = _post(api, lid, "l7policies", "l7policy", {
        "listener_id": http["id"], "action": "REDIRECT_TO_POOL",
        "redirect_pool_id": spare["id"]})
    _post(api, lid, f"l7policies/{policy['id']}/rules", "rule", {
        "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", "invert": True})
    return lid


def test_one_statement_read_equals_the_tables_read_one_by_one(api: Any) -> None:
    if api.service.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's; elsewhere it is the tables read")
    lid = _full_load_balancer(api)
    statement = aggregate.lb_read("postgresql")
    with api.service.engine.connect() as conn:
        row = aggregate.read_lb(conn, statement, lid)
        as_json = aggregate.children_of(conn, row)
        one_by_one = aggregate.read_children(conn, lid)
        table_row = conn.execute(aggregate.lb_read("sqlite"), {"lb_id": lid}).one()
        amps = [r._asdict() for r in conn.execute(LIVE_AMPHORAE, {"lb_id": lid})]
    undated = {k: v for k, v in aggregate.lb_plain(row).items() if k not in DATES}
    assert undated == {k: v for k, v in aggregate.lb_plain(table_row).items()
                       if k not in DATES}
    assert row._mapping[aggregate.ACCEPTED] == table_row._mapping[aggregate.ACCEPTED]
    assert sum(len(v) for v in one_by_one.values()) == 9  # 1+2+3+1+1+1 objects
    assert _undated(as_json) == _undated(one_by_one)
    assert aggregate.assemble(aggregate.lb_plain(row), aggregate.live(as_json)) == \
        aggregate.assemble(aggregate.lb_plain(row), aggregate.live(one_by_one))
    assert row._mapping[aggregate.ACCEPTED] is not None  # the amphorae accepted it
    from_json = [a._asdict() for a in aggregate.amphorae_of(row) or []]
    assert len(from_json) == 1
    assert [{k: v for k, v in a.items() if k not in AMPHORA_DATES} for a in from_json] == \
        [{k: v for k, v in a.items() if k not in AMPHORA_DATES} for a in amps]


def test_rows_being_deleted_are_read_and_left_out_of_render(api: Any) -> None:
    lid = _full_load_balancer(api)
    with api.service.engine.begin() as conn:  # as the API leaves a pool it is deleting
        conn.exec_driver_sql("UPDATE pool SET provisioning_status = 'PENDING_DELETE' "
                             "WHERE lb_algorithm = 'SOURCE_IP'")
    with api.service.engine.connect() as conn:
        row = aggregate.read_lb(conn, aggregate.lb_read(api.service.engine.dialect.name), lid)
        children = aggregate.children_of(conn, row)
    assert [p["lb_algorithm"] for p in children["pool"]].count("SOURCE_IP") == 1
    assert len(children["member"]) == 3  # the doomed pool's member is read (to settle)
    live = aggregate.live(children)
    assert [p["lb_algorithm"] for p in live["pool"]] == ["ROUND_ROBIN"]
    assert len(live["member"]) == 2  # ... and left out of what renders


def test_a_connection_dropped_mid_pass_still_settles(api: Any, monkeypatch: Any,
                                                      caplog: Any) -> None:
    """A pass reads, pushes and settles on one connection; if the database drops it while
    the pass waits on the data plane, the settle runs on a fresh one and the change goes
    ACTIVE in that pass (not after a crash, by the resync scan)."""
    engine = api.service.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("drops the service's connections with pg_terminate_backend")
    lid = api.create_lb(name="dropped")["id"]
    fake = api.service.drivers.amphora
    apply = fake.apply
    dropped: list[int] = []

    async def apply_then_drop(*args: Any) -> str:
        active = await apply(*args)
        if not dropped:
            other = create_engine(engine.url, poolclass=NullPool)
            with other.connect() as conn:
                dropped.extend(r[0] for r in conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")))
            other.dispose()
        return str(active)

    monkeypatch.setattr(fake, "apply", apply_then_drop)
    caplog.set_level(logging.WARNING, logger="lbaas")
    code, body = api.post(f"{V2}/listeners", {"listener": {
        "loadbalancer_id": lid, "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lid)
    assert dropped, "the pass pushed nothing: the test did not drop its connection"
    code, body = api.get(f"{V2}/listeners/{body['listener']['id']}")
    assert body["listener"]["provisioning_status"] == "ACTIVE"
    messages = [r.getMessage() for r in caplog.records]
    assert any("on a fresh connection" in m for m in messages), messages
    assert not any("crashed" in m or "failed" in m for m in messages), messages


def test_a_kept_connection_the_database_dropped_is_replaced(api: Any, caplog: Any) -> None:
    """On PostgreSQL a pass's connection is kept for the next pass (no checkout nor ping);
    if the database dropped it meanwhile, the next pass claims again on a fresh one."""
    engine = api.service.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("drops the service's connections with pg_terminate_backend")
    lid = api.create_lb(name="kept")["id"]
    assert api.service.reconciler._kept, "no connection was kept after the pass"
    other = create_engine(engine.url, poolclass=NullPool)
    with other.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    other.dispose()
    caplog.set_level(logging.WARNING, logger="lbaas")
    code, body = api.post(f"{V2}/listeners", {"listener": {
        "loadbalancer_id": lid, "protocol": "HTTP", "protocol_port": 80}})
    assert code == 201, body
    api.wait_lb(lid)
    code, body = api.get(f"{V2}/listeners/{body['listener']['id']}")
    assert body["listener"]["provisioning_status"] == "ACTIVE"
    messages = [r.getMessage() for r in caplog.records]
    assert not any("crashed" in m or "failed" in m for m in messages), messages


def test_the_one_statement_settle_locks_rows_in_the_heartbeat_writers_order(api: Any) -> None:
    """The settle statement and a heartbeat's status write meet on the same rows: the
    heartbeat locks the amphora, then the listener; the settle must lock the load balancer,
    then the amphora, then the listener (as the old transaction did), or the two deadlock
    and the settle is the one PostgreSQL aborts (the load balancer stays PENDING_UPDATE)."""
    engine = api.service.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement settle is PostgreSQL's")
    from lbaas.controller import settle_pg

    lid = api.create_lb(name="order")["id"]
    listener = _post(api, lid, "listeners", "listener", {
        "loadbalancer_id": lid, "protocol": "HTTP", "protocol_port": 80})
    other = create_engine(engine.url, poolclass=NullPool)
    try:
        with other.begin() as conn:
            (amp_id,) = conn.execute(text(
                "SELECT id FROM amphora WHERE load_balancer_id = :l AND status <> 'DELETED' "
                "LIMIT 1"), {"l": lid}).one()
            gen = conn.execute(text(
                "UPDATE load_balancer SET provisioning_status = 'PENDING_UPDATE' "
                "WHERE id = :l RETURNING generation"), {"l": lid}).scalar_one()
            conn.execute(text("UPDATE listener SET provisioning_status = 'PENDING_UPDATE' "
                              "WHERE id = :i"), {"i": listener["id"]})
        updates = [(("listener", "provisioning_status", "ACTIVE"), [listener["id"]])]
        statement = settle_pg.statement(True, False, tuple(u for u, _ in updates))
        params = settle_pg.parameters(updates, lb_id=lid, gen=gen, holder="nobody",
                                      now=datetime.now(UTC), active="ACTIVE",
                                      amp_ids=[amp_id], digests=["d"])
        outcome: dict[str, Any] = {}
        heartbeat = other.connect()
        heartbeat.execute(text("SET lock_timeout = '20s'"))  # autobegins its transaction
        heartbeat.execute(text("UPDATE amphora SET updated_at = now() WHERE id = :a"),
                          {"a": amp_id})

        def settle() -> None:
            try:
                with other.connect() as conn:
                    conn.execute(text("SET lock_timeout = '20s'"))
                    outcome["settled"] = conn.execute(statement, params).scalar()
                    conn.commit()
            except Exception as exc:  # the test reports it
                outcome["error"] = exc

        thread = threading.Thread(target=settle)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' " \
                  "AND datname = current_database()"
        deadline = time.monotonic() + 10
        with other.connect() as probe:
            while probe.execute(text(waiting)).scalar() == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        try:  # the heartbeat's second row: the settle must not hold it yet
            heartbeat.execute(text("UPDATE listener SET operating_status = 'ONLINE' "
                                   "WHERE id = :i"), {"i": listener["id"]})
            heartbeat.commit()
        finally:
            heartbeat.close()
            thread.join(30)
        assert "error" not in outcome, outcome
        assert outcome["settled"] == 1
        with other.connect() as conn:
            statuses = conn.execute(text(
                "SELECT l.provisioning_status, l.operating_status, b.provisioning_status "
                "FROM listener l JOIN load_balancer b ON b.id = l.load_balancer_id "
                "WHERE l.id = :i"), {"i": listener["id"]}).one()
        assert tuple(statuses) == ("ACTIVE", "ONLINE", "ACTIVE")
    finally:
        other.dispose()
