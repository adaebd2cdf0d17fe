"""Hostile heartbeats: unsigned datagrams cost one HMAC and are never decompressed; signed but
malformed messages are refused, counted and change nothing (not even stale detection); the log
says so once per source and reason, however many arrive."""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

import pytest
from heartbeat_helpers import KEY
from sqlalchemy import select
from test_health_manager import build, message, metric, statuses

from lbaas.store import tables as t
from lbaas.wire import heartbeat as codec
from lbaas.wire.envelope import AMPHORA_MAGIC, amphora_key, get_hmac, seal_for

REJECTED = "lbaas_health_heartbeats_rejected_total"


def bomb(size: int = 4 * 1024 * 1024) -> bytes:
    """A few KB that inflate to ``size`` bytes."""
    return zlib.compress(b"0" * size, 9)


class InflateSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = zlib.decompressobj

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(codec.zlib, "decompressobj", spy)
        monkeypatch.setattr(codec.zlib, "decompress",
                            lambda *_a, **_k: pytest.fail("zlib.decompress called"))


def seal(raw: bytes, master: str, amp_id: str = "4b2c1ad6-0000-4000-8000-000000000001") \
        -> bytes:
    """``raw`` as it comes from amphora ``amp_id``: signed with its own key."""
    return seal_for(raw, amp_id, amphora_key(master, amp_id))


def last_heartbeat(api: Any, amphora_id: str) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(t.amphora.c.last_heartbeat, t.amphora.c.heartbeat_seq)
                            .where(t.amphora.c.id == amphora_id)).one()


def forged(payload: bytes, amp_id: str = "4b2c1ad6-0000-4000-8000-000000000001") -> bytes:
    """Our envelope around a raw zlib ``payload``, signed with a key that is not the amphora's."""
    body = AMPHORA_MAGIC + bytes((len(amp_id),)) + amp_id.encode() + payload
    return body + get_hmac(body, amphora_key("not-the-key", amp_id))


def test_unsigned_zlib_bomb_is_never_decompressed(api: Any, health: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hm = health()
    legacy = health(accept_master_key=True)  # also checks upstream's envelope (master key)
    spy = InflateSpy(monkeypatch)
    payload = bomb()
    assert len(payload) < 8192
    hm.send_raw(forged(payload))  # signed with another key
    hm.send_raw(forged(payload)[:-64] + b"0" * 64)  # a hex tail that is no signature at all
    hm.send_raw(forged(payload)[:-64])  # no tail: the end of the zlib stream is no hex digest
    hm.send_raw(payload + get_hmac(payload, KEY))  # upstream's envelope: refused unread
    legacy.send_raw(payload + get_hmac(payload, "not-the-key"))
    legacy.send_raw(payload + get_hmac(payload, "not-the-key", False))  # old binary digest
    assert spy.calls == 0
    assert metric(api, f'{REJECTED}{{reason="bad_signature"}}') == 2
    assert metric(api, f'{REJECTED}{{reason="truncated"}}') == 1
    assert metric(api, f'{REJECTED}{{reason="master_key"}}') == 1
    assert legacy.manager.metrics.rejected == {"bad_signature": 1, "truncated": 1}
    # unsigned datagrams are refused in the socket callback: nothing reaches the backlog
    assert hm.manager.backlog == 0 and legacy.manager.backlog == 0


def test_signed_bomb_is_bounded(api: Any, health: Any) -> None:
    hm = health()
    started = time.process_time()
    hm.send_raw(seal(b"0" * (8 * 1024 * 1024), KEY))  # signed, inflates far beyond the bound
    assert time.process_time() - started < 1.0
    assert metric(api, f'{REJECTED}{{reason="malformed"}}') == 1


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("case", [
    "nested", "nested-in-listener", "seq-2**63", "seq-huge", "seq-float", "seq-missing",
    "id-int", "id-long", "stats-str", "stats-negative", "stats-2**63", "members-list",
    "member-status-int", "listener-status-dict", "digest-int", "digest-long", "pools-list",
])
def test_signed_malformed_message_is_counted_and_changes_nothing(
        api: Any, health: Any, case: str) -> None:
    ids = build(api)
    hm = health()
    hm.send(message(ids, 5))
    before_status = statuses(api, ids)
    before_row = last_heartbeat(api, ids["amphora"])
    since = hm.manager.listening_since
    down = message(ids, 6, members=("DOWN", "DOWN"), pool="DOWN")
    listener = down["listeners"][ids["listener"]]
    pool = next(iter(down["pools"].values()))
    if case == "nested":
        raw = nested(200_000)
    elif case == "nested-in-listener":
        raw = (b'{"id":"%s","seq":6,"listeners":{"x":' % ids["amphora"].encode()
               + nested(100_000) + b"}}")
    else:
        if case == "seq-2**63":
            down["seq"] = 2**63
        elif case == "seq-huge":
            down["seq"] = 10**30
        elif case == "seq-float":
            down["seq"] = 6.5
        elif case == "seq-missing":
            del down["seq"]
        elif case == "id-int":
            down["id"] = 7
        elif case == "id-long":
            down["id"] = ids["amphora"] * 10
        elif case == "stats-str":
            listener["stats"]["rx"] = "100"
        elif case == "stats-negative":
            listener["stats"]["rx"] = -5
        elif case == "stats-2**63":
            listener["stats"]["rx"] = 2**63
        elif case == "members-list":
            pool["members"] = list(pool["members"])
        elif case == "member-status-int":
            pool["members"][ids["members"][0]] = 0
        elif case == "listener-status-dict":
            listener["status"] = {"OPEN": 1}
        elif case == "digest-int":
            down["digest"] = 5
        elif case == "digest-long":
            down["digest"] = "d" * 129
        elif case == "pools-list":
            down["pools"] = []
        import json

        raw = json.dumps(down).encode()
    hm.send_raw(seal(raw, KEY, ids["amphora"]))
    assert metric(api, f'{REJECTED}{{reason="malformed"}}') == 1
    assert metric(api, "lbaas_health_heartbeats_accepted_total") == 1
    assert hm.manager.listening_since == since, "a malformed message postponed staleness"
    assert statuses(api, ids) == before_status
    assert last_heartbeat(api, ids["amphora"]) == before_row
    # and the amphora's next genuine heartbeat is applied
    hm.send(message(ids, 7, members=("UP", "DOWN")))
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]


def test_signed_malformed_messages_do_not_keep_a_dead_amphora_alive(api: Any,
                                                                    health: Any) -> None:
    """The attack of issue 10: one malformed signed message now and then reset stale
    detection and kept every failover off."""
    ids = build(api)
    hm = health(heartbeat_timeout=0.5, build_grace=0.5)
    hm.send(message(ids, 1))
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:  # the amphora is silent; the attacker is not
        hm.send_raw(seal(nested(100_000), KEY, ids["amphora"]))
        hm.send_raw(seal(b'{"id":"%s","seq":%d}' % (ids["amphora"].encode(), 2**63), KEY,
                         ids["amphora"]))
        time.sleep(0.1)
    assert hm.run(hm.manager.check_stale()) == [ids["amphora"]]


def test_rejections_are_logged_once_per_source_and_reason(
        api: Any, health: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lbaas.health")
    hm = health()
    payload = bomb(1000)
    for _ in range(50):
        hm.send_raw(forged(payload))
    for i in range(20):
        hm.send_raw(seal(b"[%d]" % i, KEY))
    for _ in range(20):
        hm.send_raw(seal(b"[19]", KEY))  # the same bytes as the last: a replay
    assert metric(api, f'{REJECTED}{{reason="bad_signature"}}') == 50
    assert metric(api, f'{REJECTED}{{reason="malformed"}}') == 20
    assert metric(api, f'{REJECTED}{{reason="replay"}}') == 20
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 3, lines
    assert "bad_signature" in lines[0] and "malformed" in lines[1] and "replay" in lines[2]


def test_ratelog_table_is_bounded() -> None:
    from lbaas.health.ratelog import RateLimitedLog

    now = [0.0]
    written: list[str] = []

    class Sink(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record.getMessage())

    logger = logging.getLogger("test.ratelog")
    logger.setLevel(logging.INFO)
    logger.addHandler(Sink())
    limited = RateLimitedLog(logger, interval=10, max_keys=4, clock=lambda: now[0])
    for n in range(1000):  # 1,000 spoofed sources
        limited(logging.WARNING, f"10.0.{n // 256}.{n % 256}", "bad_signature", "x")
    assert len(written) == 5  # four sources, then one shared line
    assert len(limited._last) <= 5
    now[0] = 11.0
    limited(logging.WARNING, "10.9.9.9", "bad_signature", "x")
    assert len(written) == 6 and "more like it" not in written[-1]


def test_one_amphoras_key_cannot_change_another_load_balancer(api: Any, health: Any) -> None:
    """Amphora A is compromised: with its own key it tries to report B's members down."""
    a, b = build(api), build(api)
    hm = health()
    hm.send(message(a, 1))
    hm.send(message(b, 1))
    healthy = statuses(api, b)
    key_a = amphora_key(KEY, a["amphora"])  # what amphora A holds; never the master key
    import json

    lie = json.dumps(message(b, 2, members=("DOWN", "DOWN"), pool="DOWN")).encode()
    hm.send_raw(seal_for(lie, a["amphora"], key_a))
    hm.send_raw(seal_for(lie, b["amphora"], key_a))
    assert statuses(api, b) == healthy
    assert metric(api, f'{REJECTED}{{reason="wrong_amphora"}}') == 1
    assert metric(api, f'{REJECTED}{{reason="bad_signature"}}') == 1
    # B's own key still works
    hm.send_raw(seal_for(lie, b["amphora"], amphora_key(KEY, b["amphora"])))
    assert statuses(api, b)["pool"] == "ERROR"


def test_master_key_envelopes_are_refused_unless_configured(api: Any, health: Any) -> None:
    from lbaas.wire.heartbeat import wrap_envelope

    ids = build(api)
    strict, legacy = health(), health(accept_master_key=True)
    strict.send_raw(wrap_envelope(message(ids, 1), KEY))
    assert strict.manager.metrics.rejected == {"master_key": 1}
    assert statuses(api, ids)["members"] == ["OFFLINE", "OFFLINE"]
    legacy.send_raw(wrap_envelope(message(ids, 2), KEY))
    assert legacy.manager.metrics.accepted == 1
    assert statuses(api, ids)["members"] == ["ONLINE", "ONLINE"]


def test_two_health_managers_count_each_heartbeat_once_and_fail_over_once(
        api: Any, health: Any) -> None:
    """Every heartbeat goes to every health manager (controller_ip_port_list): the first to
    record a sequence number claims it; a stale amphora is flagged by one manager only."""
    ids = build(api)
    first = health(heartbeat_timeout=0.5, build_grace=0.5)
    second = health(heartbeat_timeout=0.5, build_grace=0.5)
    stats = {"rx": 100, "tx": 1000, "conns": 1, "totconns": 2, "ereq": 0}
    for seq in (1, 2):
        data = first.send(message(ids, seq, stats=stats))
        second.send_raw(data)
    _, body = api.get(f"/v2/lbaas/listeners/{ids['listener']}/stats")
    assert body["stats"]["bytes_in"] == 200 and body["stats"]["total_connections"] == 4
    assert first.manager.metrics.accepted == 2
    assert second.manager.metrics.rejected == {"duplicate": 2}
    time.sleep(0.6)
    flagged = first.run(first.manager.check_stale()) + second.run(second.manager.check_stale())
    assert flagged == [ids["amphora"]]
    assert len(first.notified) + len(second.notified) == 1


def test_replayed_datagram_is_refused_before_it_is_decompressed(
        api: Any, health: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A captured genuine heartbeat, sent again byte for byte: refused as ``replay`` by its
    signature, never inflated nor queued; older ones (by seq) are never queued either."""
    ids = build(api)
    hm = health()
    first = hm.send(message(ids, 20))
    latest = hm.send(message(ids, 21))
    accepted = metric(api, "lbaas_health_heartbeats_accepted_total")
    spy = InflateSpy(monkeypatch)
    queued: list[Any] = []
    real_put = hm.manager.pending.put
    monkeypatch.setattr(hm.manager.pending, "put",
                        lambda *item: (queued.append(item), real_put(*item))[1])
    for _ in range(50):
        hm.send_raw(latest)
        hm.send_raw(first)
    assert spy.calls == 0 and queued == []
    assert metric(api, f'{REJECTED}{{reason="replay"}}') == 100
    assert metric(api, "lbaas_health_heartbeats_accepted_total") == accepted
    # a datagram older than the recent ones: decoded (the seq is inside), refused, not queued
    hm.manager.recent.forget(ids["amphora"])
    hm.send_raw(first)
    assert spy.calls == 1 and queued == []
    assert metric(api, f'{REJECTED}{{reason="replay"}}') == 101
    hm.send(message(ids, 22, members=("UP", "DOWN")))  # the amphora's next one still counts
    assert spy.calls == 2 and len(queued) == 1
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]
