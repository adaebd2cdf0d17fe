"""A compromised amphora, holding its own heartbeat key, against everybody else's failover.

What an operator relies on: a dead amphora is failed over within its heartbeat timeout, and a
healthy one never is, whatever another amphora sends with its own valid key — a flood of
genuine-looking heartbeats (growing ``seq``) or counters that overflow the database's columns
(docs/security.md, Heartbeats; decision 0111). Each test here failed before the fix.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from heartbeat_helpers import KEY, until
from sqlalchemy.exc import DataError
from test_health_manager import build, message, metric

from lbaas.health import manager as manager_module
from lbaas.wire.heartbeat import wrap_amphora_envelope

REJECTED = "lbaas_health_heartbeats_rejected_total"
MAX_BIGINT = 2**63 - 1
SLACK = 1.5  # check interval, thread scheduling on a busy two-core machine


def failed_over(caplog: pytest.LogCaptureFixture, ids: dict[str, Any]) -> bool:
    """The health manager's operator-facing line: it flagged this amphora for failover."""
    return any(ids["amphora"] in r.getMessage() and "failing it over" in r.getMessage()
               for r in caplog.records)


def live_amphorae(api: Any, ids: dict[str, Any]) -> list[str]:
    code, body = api.get(f"/v2/octavia/amphorae?loadbalancer_id={ids['lb']}")
    assert code == 200, body
    return [a["id"] for a in body["amphorae"] if a["status"] != "DELETED"]


def listener_stats(api: Any, ids: dict[str, Any]) -> dict[str, Any]:
    code, body = api.get(f"/v2/lbaas/listeners/{ids['listener']}/stats")
    assert code == 200, body
    return body["stats"]


class Alive:
    """A healthy amphora: a heartbeat every ``interval`` seconds in a thread, until stopped."""

    def __init__(self, hm: Any, ids: dict[str, Any], interval: float = 0.2) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(hm, ids, interval), daemon=True)
        self.thread.start()

    def _run(self, hm: Any, ids: dict[str, Any], interval: float) -> None:
        seq = 1
        while not self.stop.is_set():
            hm.sock.sendto(wrap_amphora_envelope(message(ids, seq), KEY), hm.manager.address)
            seq += 1
            self.stop.wait(interval)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def flood(hm: Any, datagrams: list[bytes], seconds: float) -> int:
    """Send ``datagrams`` as fast as the receiver can read them (in bursts of 100, so the
    socket buffer does not drop most of them), for at most ``seconds``; how many were sent."""
    end = time.monotonic() + seconds
    for i in range(0, len(datagrams), 100):
        if time.monotonic() > end:
            return i
        for data in datagrams[i:i + 100]:
            hm.sock.sendto(data, hm.manager.address)
        time.sleep(0.003)
    return len(datagrams)


def failover_times(caplog: pytest.LogCaptureFixture, ids: dict[str, Any]) -> list[float]:
    return [r.created for r in caplog.records
            if ids["amphora"] in r.getMessage() and "failing it over" in r.getMessage()]


def test_heartbeat_flood_neither_suspends_failover_nor_fails_over_a_healthy_amphora(
        api: Any, health: Any, caplog: pytest.LogCaptureFixture) -> None:
    """One amphora sends valid heartbeats (growing seq) as fast as the receiver reads them for
    3 s, while a healthy amphora of another load balancer keeps sending every 0.2 s and a third
    one has died: the dead one is failed over within its timeout, the healthy one never."""
    healthy, dead, attacker = build(api), build(api), build(api)
    timeout = 2.0
    datagrams = [wrap_amphora_envelope(message(attacker, seq), KEY) for seq in range(1, 60_001)]
    hm = health(stale_detection=True, heartbeat_timeout=timeout, build_grace=timeout)
    alive = Alive(hm, healthy)
    try:
        hm.send(message(dead, 1))  # its last heartbeat
        died = time.time()
        sent = flood(hm, datagrams, 3.0)
        flood_over = time.monotonic()
        # the dead amphora: flagged within its budget, flood or not
        assert until(lambda: failed_over(caplog, dead), timeout + SLACK), \
            "the dead amphora was not failed over"
        assert failover_times(caplog, dead)[0] - died <= timeout + SLACK
        assert until(lambda: dead["amphora"] not in live_amphorae(api, dead)), \
            "the reconciler did not replace the dead amphora"
        # the healthy amphora: never, for well over a timeout after the flood
        time.sleep(max(0.0, flood_over + 2 * timeout - time.monotonic()))
        assert not failed_over(caplog, healthy)
        assert live_amphorae(api, healthy) == [healthy["amphora"]]
    finally:
        alive.close()
    received = hm.manager.metrics.received
    assert received > 5000, f"the flood did not reach the receiver ({sent} sent, {received})"
    # the flood cost one pending slot at most: nobody else's heartbeat was dropped, and the
    # attacker's excess was refused (counted) after verification
    assert metric(api, "lbaas_health_heartbeats_dropped_total") == 0
    assert metric(api, f'{REJECTED}{{reason="rate_limited"}}') > 0


def test_counter_overflow_saturates_and_never_postpones_failover(
        api: Any, health: Any, caplog: pytest.LogCaptureFixture) -> None:
    """An amphora reporting the largest deltas the message allows, every 0.1 s: its counters
    stop at BIGINT's maximum, and a dead amphora elsewhere is still failed over on time."""
    dead, attacker = build(api), build(api)
    timeout = 0.5
    hm = health(stale_detection=True, heartbeat_timeout=timeout, build_grace=timeout)
    hm.send(message(dead, 1))
    died = time.monotonic()
    huge = {"rx": MAX_BIGINT, "tx": MAX_BIGINT, "conns": MAX_BIGINT, "totconns": MAX_BIGINT,
            "ereq": MAX_BIGINT}
    seq = 1
    while not failed_over(caplog, dead) and time.monotonic() - died < timeout + 3.0:
        hm.sock.sendto(wrap_amphora_envelope(message(attacker, seq, stats=huge), KEY),
                       hm.manager.address)
        seq += 1
        time.sleep(0.1)
    assert failed_over(caplog, dead), "the dead amphora was never failed over"
    assert time.monotonic() - died <= timeout + SLACK
    assert not failed_over(caplog, attacker)  # alive: its heartbeats were all recorded
    m = hm.manager.metrics  # the dead one's heartbeat and the attacker's seq - 1, all recorded
    assert seq > 3 and until(lambda: m.accepted + m.merged >= seq)
    assert metric(api, f'{REJECTED}{{reason="malformed"}}') == 0
    assert listener_stats(api, attacker) == {
        "bytes_in": MAX_BIGINT, "bytes_out": MAX_BIGINT, "total_connections": MAX_BIGINT,
        "request_errors": MAX_BIGINT, "active_connections": 2**31 - 1}


def test_a_message_the_database_refuses_is_rejected_not_taken_for_an_outage(
        api: Any, health: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever value of one signed message the database refuses (DataError): that message is
    counted as malformed; stale detection goes on for everybody."""
    dead, attacker = build(api), build(api)
    hm = health(heartbeat_timeout=0.5, build_grace=0.5)
    hm.send(message(dead, 1))

    def refuses(ids: list[str]) -> None:
        if attacker["amphora"] in ids:
            raise DataError("UPDATE listener_statistics ...", {},
                            Exception("bigint out of range"))

    real_record, real_apply = hm.manager.recorder.record, manager_module.apply_heartbeat
    monkeypatch.setattr(hm.manager.recorder, "record", lambda batch, now: (
        refuses([m["id"] for m in batch]), real_record(batch, now))[1])
    monkeypatch.setattr(manager_module, "apply_heartbeat", lambda engine, health, now: (
        refuses([health["id"]]), real_apply(engine, health, now))[1])
    since = hm.manager.listening_since
    for seq in range(1, 4):
        hm.send(message(attacker, seq))
    assert metric(api, f'{REJECTED}{{reason="malformed"}}') == 3
    assert hm.manager.listening_since == since
    time.sleep(0.6)
    assert dead["amphora"] in hm.run(hm.manager.check_stale())


def test_unwritten_heartbeats_of_one_amphora_hold_one_slot_and_keep_every_delta(
        api: Any, health: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the writer is busy, an amphora's newer heartbeat replaces its unwritten one and
    takes over its statistics deltas: one slot, no traffic count lost."""
    ids = build(api)
    hm = health()
    hm.send(message(ids, 1, stats={"rx": 1, "tx": 2, "conns": 1, "totconns": 1, "ereq": 0}))
    gate = threading.Event()
    real_record = hm.manager.recorder.record
    monkeypatch.setattr(hm.manager.recorder, "record",
                        lambda batch, now: (gate.wait(10), real_record(batch, now))[1])
    for seq in range(2, 32):  # 30 heartbeats: the first is being written, 29 wait
        hm.sock.sendto(wrap_amphora_envelope(message(ids, seq, stats={
            "rx": 10, "tx": 100, "conns": seq, "totconns": 1, "ereq": 1}), KEY),
            hm.manager.address)
    assert until(lambda: hm.manager.metrics.merged == 28)
    assert hm.manager.backlog == 1
    gate.set()
    assert until(lambda: listener_stats(api, ids)["bytes_in"] == 1 + 30 * 10)
    assert listener_stats(api, ids) == {"bytes_in": 301, "bytes_out": 3002,
                                        "total_connections": 31, "request_errors": 30,
                                        "active_connections": 31}
    assert metric(api, "lbaas_health_heartbeats_accepted_total") == 3
