"""The API app's CPU per full load balancer, in one process: no HTTP server, no bus, no worker.

``bench_scale.py`` measures the API processes, which also hold uvicorn, the event loop, the
publishing to RabbitMQ and idle loops, on a machine whose load moves every figure. This one
calls the ASGI app directly on a fresh PostgreSQL database (the machine's server) and counts
only the CPU of those calls (``time.process_time``): the same load balancer as bench_scale
(listener, pool, two members, HTTP monitor) through six POSTs, then through one fully populated
POST. Between POSTs the load balancer and its children are set ACTIVE by SQL, outside the
measured time, standing in for the worker. Compare trees by putting the other tree's ``src/``
on ``PYTHONPATH`` with the same virtualenv, alternating runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from typing import Any

import orjson
from scratch_postgres import scratch_postgres
from sqlalchemy import Engine, text

from lbaas.main.database import open_database
from lbaas.main.service import build_api_app
from lbaas.settings import load_settings
from lbaas.store.seed import subnet_id

NETWORKS = [{"name": f"bench-{kind}", "subnet_name": f"bench-{kind}-subnet",
             "cidr": f"10.{200 + n}.0.0/16", "gateway_ip": f"10.{200 + n}.0.1",
             "allocation_start": f"10.{200 + n}.0.10",
             "allocation_end": f"10.{200 + n}.255.200"}
            for n, kind in enumerate(("vip", "members", "mgmt"))]
MONITOR = {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}
MEMBERS = [{"address": f"10.201.0.{host}", "protocol_port": 8080} for host in (10, 11)]
ACTIVATE = [
    "UPDATE load_balancer SET provisioning_status = 'ACTIVE' WHERE id = :lb",
    "UPDATE listener SET provisioning_status = 'ACTIVE' WHERE load_balancer_id = :lb",
    "UPDATE pool SET provisioning_status = 'ACTIVE' WHERE load_balancer_id = :lb",
    "UPDATE member SET provisioning_status = 'ACTIVE' WHERE pool_id IN "
    "(SELECT id FROM pool WHERE load_balancer_id = :lb)",
    "UPDATE health_monitor SET provisioning_status = 'ACTIVE' WHERE pool_id IN "
    "(SELECT id FROM pool WHERE load_balancer_id = :lb)",
]


class AppClient:
    """POSTs straight into the ASGI app, adding up the CPU the calls take."""

    def __init__(self, app: Any, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.cpu = 0.0
        self.profiler: cProfile.Profile | None = None

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps(body)
        scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"accept", b"*/*")],
                 "scheme": "http", "root_path": "", "server": ("127.0.0.1", 9876)}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        started = time.process_time()
        if self.profiler is not None:
            self.profiler.enable()
        await self.app(scope, receive, send)
        if self.profiler is not None:
            self.profiler.disable()
        self.cpu += time.process_time() - started
        if sent[0]["status"] != 201:
            raise SystemExit(f"POST {path} -> {sent[0]['status']}: {sent[1]['body']!r}")
        return dict(next(iter(orjson.loads(sent[1]["body"]).values())))

    def activate(self, lb_id: str) -> None:
        with self.engine.begin() as conn:
            for statement in ACTIVATE:
                conn.execute(text(statement), {"lb": lb_id})


async def six_calls(client: AppClient, n: int, vip: str) -> None:
    lb = await client.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": f"b{n}", "vip_subnet_id": vip}})
    client.activate(lb["id"])
    listener = await client.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    client.activate(lb["id"])
    pool = await client.post("/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    client.activate(lb["id"])
    for member in MEMBERS:
        await client.post(f"/v2/lbaas/pools/{pool['id']}/members", {"member": member})
        client.activate(lb["id"])
    await client.post("/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], **MONITOR}})
    client.activate(lb["id"])


async def one_call(client: AppClient, n: int, vip: str) -> None:
    lb = await client.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": f"g{n}", "vip_subnet_id": vip,
        "listeners": [{"protocol": "HTTP", "protocol_port": 80,
                       "default_pool": {"name": "pool"}}],
        "pools": [{"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                   "members": MEMBERS, "healthmonitor": MONITOR}]}})
    client.activate(lb["id"])


async def measure(client: AppClient, count: int, warmup: int,
                  profile: str | None = None) -> tuple[float, float]:
    vip = subnet_id("bench-vip-subnet")
    for n in range(warmup):
        await six_calls(client, 10_000 + n, vip)
        await one_call(client, 10_000 + n, vip)
    figures = []
    for shape in (six_calls, one_call):
        client.cpu = 0.0
        client.profiler = cProfile.Profile(time.process_time) if profile else None
        for n in range(count):
            await shape(client, n, vip)
        figures.append(client.cpu * 1000 / count)
        if client.profiler is not None:
            client.profiler.dump_stats(f"{profile}-{shape.__name__}.pstat")
    return figures[0], figures[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lbs", type=int, default=60, help="load balancers per shape")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--profile", metavar="PREFIX",
                   help="cProfile the measured POSTs (not the SQL between them) of each shape: "
                        "PREFIX-six_calls.pstat, PREFIX-one_call.pstat; the figures then "
                        "include its cost")
    args = p.parse_args(argv)
    with scratch_postgres("lbaas_bench_app") as url, \
            tempfile.TemporaryDirectory(prefix="lbbenchapp") as data:
        settings = load_settings(overrides={
            "data_dir": data, "database_url": url, "controller": {"drivers": "fake"},
            "networking": {"management_network": "bench-mgmt", "networks": NETWORKS}},
            environ={})
        engine = open_database(settings)
        try:
            client = AppClient(build_api_app(settings, engine), engine)
            six, one = asyncio.run(measure(client, args.lbs, args.warmup, args.profile))
        finally:
            engine.dispose()
    print(f"API app CPU per full load balancer ({args.lbs} each): 6 POSTs {six:.1f} ms, "
          f"1 POST (single-call create) {one:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
