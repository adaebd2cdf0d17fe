"""The batched recorder writes only what changed, and still sees what the API changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from test_health_manager import build, message, statuses

from lbaas.store import tables as t


@contextmanager
def writes(engine: Any) -> Iterator[list[str]]:
    """The INSERT/UPDATE/DELETE statements run on ``engine`` meanwhile (first words)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words and words[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(" ".join(words[:3]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_steady_heartbeats_write_only_the_heartbeat(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health()
    engine = api.service.engine
    with engine.connect() as conn:  # the amphora serves what it was given: no drift repair
        digest = conn.execute(select(t.amphora.c.active_digest)
                              .where(t.amphora.c.id == ids["amphora"])).scalar()

    def send(seq: int, **kwargs: Any) -> None:
        hm.send({**message(ids, seq, **kwargs), "digest": digest})

    send(1)
    with writes(engine) as seen:
        send(2)  # same statuses, no traffic
    assert seen == ["UPDATE amphora SET"], seen
    with writes(engine) as seen:
        send(3, stats={"rx": 5, "tx": 6, "conns": 1, "totconns": 1, "ereq": 0})
    assert sorted(seen) == ["UPDATE amphora SET", "UPDATE listener_statistics SET"], seen
    with writes(engine) as seen:
        send(4, members=("UP", "DOWN"))
    assert "UPDATE member SET" in seen and "UPDATE pool SET" in seen, seen
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]


def test_a_member_added_through_the_api_gets_its_status(api: Any, health: Any) -> None:
    ids = build(api)
    hm = health()
    hm.send(message(ids, 1))
    hm.send(message(ids, 2))
    code, body = api.post(f"/v2/lbaas/pools/{ids['pool']}/members", {"member": {
        "address": "192.0.2.52", "protocol_port": 8080}})
    assert code == 201, body
    api.wait_lb(ids["lb"])
    third = body["member"]["id"]
    msg = message(ids, 3)
    next(iter(msg["pools"].values()))["members"][third] = "DOWN"
    hm.send(msg)
    _, body = api.get(f"/v2/lbaas/pools/{ids['pool']}/members/{third}")
    assert body["member"]["operating_status"] == "ERROR"
    assert statuses(api, ids)["pool"] == "DEGRADED"


def test_a_batch_that_fails_for_its_content_is_retried_message_by_message(
        api: Any, health: Any, monkeypatch: Any) -> None:
    ids = build(api)
    hm = health()
    hm.send(message(ids, 1))

    def broken(*_args: Any) -> None:
        raise KeyError("a bug in the batch path")

    monkeypatch.setattr(hm.manager.recorder, "record", broken)
    since = hm.manager.listening_since
    hm.send(message(ids, 2, members=("UP", "DOWN")))  # applied by the per-message path
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]
    assert hm.manager.listening_since == since
    monkeypatch.undo()
    hm.send(message(ids, 3))  # and the consumer is still there
    assert statuses(api, ids)["members"] == ["ONLINE", "ONLINE"]
