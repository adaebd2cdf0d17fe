"""Heartbeats one health-manager process verifies and records per second, batched path vs the
per-message path, in one run; and what a forged datagram costs the receiver.

A fresh PostgreSQL database (``--sqlite``: a SQLite file, the all-in-one default) gets N
amphorae, each of a full load balancer (listener, pool with two members, all ONLINE). Each
amphora sends signed heartbeats (its own key) in steady state: statuses unchanged, traffic on
its listener (non-zero statistics deltas: the worst case for writes). The datagrams are handed
to ``HealthManager.received`` — the socket callback, so signature check, decompression, parsing
and validation are measured — and the manager's own consumer batches them into the database.
The reference is the per-message path (one transaction and a full snapshot of the load
balancer per heartbeat), driven on the same database in the same run. CPU seconds are this
process's (verification, Python, the database client); wall seconds include the database
server, which shares the machine's two cores.

Then the flood: CPU per forged datagram (an 8 KB zlib bomb inflating to 4 MB, wrong key) as the
receiver refuses it now (one HMAC), and as it did before (decompressed to choose a reason).
Run by ``make bench-scale``; ``--help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from scratch_postgres import scratch_postgres
from sqlalchemy import Engine, insert

from lbaas.health import stale
from lbaas.health.manager import QUEUE_SIZE, HealthManager, utcnow
from lbaas.store import db
from lbaas.store import tables as t
from lbaas.wire.envelope import AMPHORA_MAGIC, amphora_key, get_hmac
from lbaas.wire.heartbeat import wrap_amphora_envelope

KEY = "bench-heartbeat-master-key"
GOAL = 10_000
ADDR = ("10.0.0.9", 40000)


@contextmanager
def database(sqlite: bool) -> Iterator[str]:
    if sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/hb.sqlite"
        return
    with scratch_postgres("lbaas_hb") as url:
        yield url


def populate(engine: Engine, n: int) -> list[dict[str, Any]]:
    """N full load balancers with one amphora each; their ids."""
    now = utcnow()
    common = {"provisioning_status": "ACTIVE", "operating_status": "ONLINE",
              "admin_state_up": True, "created_at": now}
    sites, lbs, listeners, pools, members, amps = [], [], [], [], [], []
    for _ in range(n):
        ids = {k: str(uuid.uuid4()) for k in ("lb", "listener", "pool", "m1", "m2", "amp")}
        sites.append(ids)
        lbs.append({"id": ids["lb"], "name": "hb", "provider": "amphora", "topology": "SINGLE",
                    "generation": 1, "applied_generation": 1, **common})
        listeners.append({"id": ids["listener"], "load_balancer_id": ids["lb"],
                          "protocol": "HTTP", "protocol_port": 80, **common})
        pools.append({"id": ids["pool"], "load_balancer_id": ids["lb"], "protocol": "HTTP",
                      "lb_algorithm": "ROUND_ROBIN", **common})
        for m, address in (("m1", "10.1.0.1"), ("m2", "10.1.0.2")):
            members.append({"id": ids[m], "pool_id": ids["pool"], "address": address,
                            "protocol_port": 8080, **common})
        amps.append({"id": ids["amp"], "load_balancer_id": ids["lb"], "status": "ALLOCATED",
                     "cert_busy": False, "failover_requested": False, "created_at": now})
    with engine.begin() as conn:
        for table, rows in ((t.load_balancer, lbs), (t.listener, listeners), (t.pool, pools),
                            (t.member, members), (t.amphora, amps)):
            conn.execute(insert(table), rows)
    return sites


def datagrams(sites: list[dict[str, Any]], seq: int) -> list[bytes]:
    out = []
    for s in sites:
        msg = {"id": s["amp"], "seq": seq, "ver": 3, "ts": time.time(), "digest": None,
               "listeners": {s["listener"]: {"status": "OPEN", "stats": {
                   "rx": 1200, "tx": 56000, "conns": 3, "totconns": 4, "ereq": 0}}},
               "pools": {f"{s['pool']}:{s['listener']}": {
                   "status": "UP", "members": {s["m1"]: "UP", s["m2"]: "UP"}}}}
        out.append(wrap_amphora_envelope(msg, KEY))
    return out


async def batched(manager: HealthManager, rounds: list[list[bytes]]) -> tuple[float, float]:
    """(CPU s, wall s) to receive and record every datagram of ``rounds``."""
    m = manager.metrics
    total = sum(len(r) for r in rounds)
    done0 = m.accepted + sum(m.rejected.values()) + m.dropped + m.merged
    cpu, wall = time.process_time(), time.perf_counter()
    for datagrams_ in rounds:
        for i in range(0, len(datagrams_), 500):  # as the socket would: a slice per loop turn
            while manager.backlog > QUEUE_SIZE - 500:  # (a socket buffer would drop)
                await asyncio.sleep(0.001)
            for data in datagrams_[i:i + 500]:
                manager.received(data, ADDR)
            await asyncio.sleep(0)
    while m.accepted + sum(m.rejected.values()) + m.dropped + m.merged - done0 < total:
        await asyncio.sleep(0.001)
    # each heartbeat written on its own: none replaced an unwritten one (that would be cheaper)
    assert m.dropped == 0 and m.merged == 0 and sum(m.rejected.values()) == 0, \
        (m.dropped, m.merged, m.rejected)
    return time.process_time() - cpu, time.perf_counter() - wall


async def per_message(manager: HealthManager, datagrams_: list[bytes]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for data in datagrams_:
        await manager.process(data)
    return time.process_time() - cpu, time.perf_counter() - wall


def line(name: str, n: int, cpu: float, wall: float) -> float:
    per_cpu = n / cpu
    print(f"  {name}: {n} heartbeats, {n / wall:,.0f}/s wall, {per_cpu:,.0f}/s per CPU second "
          f"({cpu * 1e6 / n:.0f} us each)", flush=True)
    return per_cpu


async def run(url: str, amphorae: int, rounds: int, reference: int) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    sites = populate(engine, amphorae)
    manager = HealthManager(engine, KEY, lambda _lb: None, bind_ip="127.0.0.1", bind_port=0)
    await manager.start(stale_detection=False)
    try:
        await batched(manager, [datagrams(sites, 1)])  # first sight: a snapshot each
        steady = [datagrams(sites, seq) for seq in range(2, rounds + 2)]
        cpu, wall = await batched(manager, steady)
        fast = line(f"batched, {amphorae} amphorae x {rounds} rounds", amphorae * rounds, cpu,
                    wall)
    finally:
        await manager.stop()
    stale_check(engine, amphorae)
    old = HealthManager(engine, KEY, lambda _lb: None, bind_ip="127.0.0.1", bind_port=0)
    ref = datagrams(sites[:reference], rounds + 2)
    cpu, wall = await per_message(old, ref)
    slow = line("per-message path (reference)", len(ref), cpu, wall)
    print(f"  batched / per-message: {fast / slow:.1f}x per CPU second; goal {GOAL:,}/s on one "
          f"core: {'met' if fast >= GOAL else 'NOT met'}", flush=True)
    engine.dispose()


def stale_check(engine: Engine, amphorae: int) -> None:
    """One stale-amphora scan (every ``health_check_interval``, 0.1 s by default)."""
    now = utcnow()
    since = now - timedelta(seconds=60)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(20):
        assert stale.find_stale(engine, now, 3.0, 10.0, since) == []
    cpu, wall = (time.process_time() - cpu) / 20, (time.perf_counter() - wall) / 20
    print(f"  stale check over {amphorae} live amphorae: {wall * 1000:.1f} ms wall, "
          f"{cpu * 1000:.2f} ms CPU of the health manager ({cpu * 10 * 100:.1f}% of a core at "
          "10 checks/s)", flush=True)


def flood(n: int = 300) -> None:
    """CPU per forged 8 KB zlib bomb: refused now vs decompressed first (the old receiver)."""
    amp = str(uuid.uuid4())
    payload = zlib.compress(b"0" * (4 * 1024 * 1024), 9)
    body = AMPHORA_MAGIC + bytes((len(amp),)) + amp.encode() + payload
    data = body + get_hmac(body, amphora_key("wrong", amp))
    manager = HealthManager(None, KEY, lambda _lb: None,  # type: ignore[arg-type]
                            bind_ip="127.0.0.1", bind_port=0)
    cpu = time.process_time()
    for _ in range(n):
        manager.received(data, ADDR)
    now = (time.process_time() - cpu) / n
    assert manager.metrics.rejected["bad_signature"] == n
    cpu = time.process_time()
    for _ in range(n // 10):  # what the old receiver did to pick a rejection reason
        inflater = zlib.decompressobj()
        inflater.decompress(payload, 4 * 1024 * 1024)
    before = (time.process_time() - cpu) / (n // 10)
    print(f"  forged {len(data)} B datagram (zlib bomb, wrong key): {now * 1e6:.1f} us CPU "
          f"each now, {before * 1e6:.0f} us when decompressed first (x{before / now:.0f}); "
          f"one core refuses {1 / now:,.0f}/s (before: {1 / before:,.0f}/s)", flush=True)


SENDER = """
import socket, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
data = sys.stdin.buffer.read()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    due = start + n / rate
    pause = due - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    sock.sendto(data, ("127.0.0.1", port))
    n += 1
"""


async def loop_lag(seconds: float) -> list[float]:
    """How late a 5 ms timer fires, sampled for ``seconds``: what every request served by
    the same event loop (the API in ``lbaas serve``) waits for on top of its own work."""
    lags = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)
    return sorted(lags)


async def flood_latency(rate: float, seconds: float = 3.0) -> None:
    """Event-loop lag while forged zlib bombs arrive over real UDP at ``rate``/s: no flood,
    this receiver, and a receiver that decompresses before refusing (the old one)."""
    import subprocess
    import sys

    amp = str(uuid.uuid4())
    payload = zlib.compress(b"0" * (4 * 1024 * 1024), 9)
    body = AMPHORA_MAGIC + bytes((len(amp),)) + amp.encode() + payload
    data = body + get_hmac(body, amphora_key("wrong", amp))
    manager = HealthManager(None, KEY, lambda _lb: None,  # type: ignore[arg-type]
                            bind_ip="127.0.0.1", bind_port=0)
    await manager.start(stale_detection=False)
    verify = manager.verify

    def old_verify(datagram: bytes) -> Any:  # decompressed first to pick a reason
        inflater = zlib.decompressobj()
        inflater.decompress(datagram[len(body) - len(payload):-64], 4 * 1024 * 1024)
        return verify(datagram)

    results = []
    try:
        for name, check, flood_rate in (("no flood", verify, 0.0), ("this receiver", verify,
                                        rate), ("decompress first (before)", old_verify, rate)):
            manager.verify = check  # type: ignore[method-assign]
            sender = None
            if flood_rate:
                sender = subprocess.Popen(
                    [sys.executable, "-c", SENDER, str(manager.address[1]), str(flood_rate),
                     str(seconds + 0.5)], stdin=subprocess.PIPE)
                assert sender.stdin is not None
                sender.stdin.write(data)
                sender.stdin.close()
                await asyncio.sleep(0.3)
            before = manager.metrics.received
            cpu = time.process_time()
            lags = await loop_lag(seconds)
            cpu = time.process_time() - cpu
            got = (manager.metrics.received - before) / seconds
            if sender is not None:
                sender.wait(10)
            results.append((name, lags, got, cpu / seconds))
    finally:
        await manager.stop()
    for name, lags, got, share in results:
        print(f"  event-loop lag, {name} ({got:,.0f} forged datagrams/s received): p50 "
              f"{lags[len(lags) // 2] * 1000:.2f} ms, p99 {lags[int(len(lags) * 0.99)] * 1000:.2f}"
              f" ms; receiver process CPU {share * 100:.0f}% of a core", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--amphorae", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=4, help="steady-state heartbeats per amphora")
    p.add_argument("--reference", type=int, default=1000,
                   help="heartbeats sent through the per-message path")
    p.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    p.add_argument("--flood-rate", type=float, default=200.0,
                   help="forged datagrams/s for the event-loop lag figure (issue 10: 200)")
    args = p.parse_args(argv)
    engine_name = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"bench-heartbeats: one health manager, {engine_name}, full load balancers "
          f"(listener, pool, 2 members), statistics moving in every heartbeat; pid {os.getpid()}",
          flush=True)
    with database(args.sqlite) as url:
        asyncio.run(run(url, args.amphorae, args.rounds, args.reference))
    flood()
    asyncio.run(flood_latency(args.flood_rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
