"""Heartbeats one health-manager process verifies and records per second (this tree's
HealthManager, driven in process): the fallback figure of ``make bench-scale`` while
``bench/bench_heartbeats.py`` is not in the tree.

A fresh PostgreSQL database gets 1,000 amphorae of load balancers with no listeners (the
smallest heartbeat: verify, replay check, last_heartbeat); each is sent ten signed heartbeats
through ``HealthManager.process``, the path a datagram takes after the socket. CPU seconds are
this process's (verification and the database client), wall seconds include the database.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import create_engine, insert, text

from lbaas.health.manager import HealthManager
from lbaas.store import db
from lbaas.store import tables as t
from lbaas.wire.heartbeat import wrap_envelope

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AMPHORAE = 1000
ROUNDS = 10
KEY = "bench-heartbeat-key"


async def run(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    amps = [str(uuid.uuid4()) for _ in range(AMPHORAE)]
    with engine.begin() as conn:
        for amp in amps:
            lb = str(uuid.uuid4())
            conn.execute(insert(t.load_balancer).values(
                id=lb, name="hb", provisioning_status="ACTIVE", operating_status="ONLINE",
                admin_state_up=True,
                provider="amphora", topology="SINGLE", generation=1, applied_generation=1,
                created_at=now))
            conn.execute(insert(t.amphora).values(
                id=amp, load_balancer_id=lb, status="ALLOCATED", cert_busy=False,
                failover_requested=False, created_at=now))
    manager = HealthManager(engine, KEY, lambda _lb: None, bind_ip="127.0.0.1", bind_port=0)
    datagrams = [wrap_envelope({"id": amp, "seq": seq, "ver": 3, "ts": time.time(),
                                "digest": None, "listeners": {}, "pools": {}}, KEY)
                 for seq in range(1, ROUNDS + 1) for amp in amps]
    cpu, wall = time.process_time(), time.perf_counter()
    for data in datagrams:
        await manager.process(data)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(datagrams)
    print(f"  {n} heartbeats of {AMPHORAE} amphorae: {n / wall:.0f}/s wall, "
          f"{n / cpu:.0f}/s per CPU second of the health manager ({cpu * 1e6 / n:.0f} us each;"
          f" goal 10,000/s on one core)")
    engine.dispose()


def main() -> int:
    name = f"lbaas_hb_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
