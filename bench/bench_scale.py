"""Scale benchmark: the roles as processes, 1,000 full load balancers, 1 worker vs 3.

Starts ``lbaas api`` ×2 and ``lbaas worker`` ×1, then ×3, on a fresh PostgreSQL database of
the machine's server and its RabbitMQ (own topic, removed afterwards), fake drivers. Sixteen
clients each build load balancers with a listener, a pool, two members and a health monitor,
one POST at a time, each POST waiting for ACTIVE, through both APIs. Key choice: the clients
learn ACTIVE from the database itself (one poller for all of them), so waiting costs the
measured processes nothing and "CPU ms per load balancer" is what the API and the worker spend
on the six changes; next to it, the idle processes' CPU over the same wall time (reported, not
subtracted). Then list latency with 1,000 load balancers, and the same load balancers again,
each with one fully populated POST (Octavia's single-call create) and its own CPU figure; RSS
of each process, and the heartbeat figure (``bench/bench_heartbeats.py``: batched vs
per-message path). Run by ``make bench-scale``; ``--help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from scratch_postgres import scratch_postgres
from sqlalchemy import create_engine, select

from lbaas.store import tables as t

HERE = Path(__file__).resolve().parent
LBAAS = str(Path(sys.executable).with_name("lbaas"))
RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"
GOAL_CPU_MS = 10.0
BEFORE_CPU_MS = 25.0  # the all-in-one process on SQLite before this work (issue 12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def remove_topic(topic: str) -> None:
    import aio_pika

    async def remove() -> None:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(topic)
            await channel.exchange_delete(f"{topic}-fanout")

    try:
        asyncio.run(remove())
    except Exception as exc:  # the bench's figures stand; say what was left behind
        print(f"(could not remove RabbitMQ queue {topic}: {exc!r})")


class Site:
    """2 API processes and N workers on one database and one topic."""

    def __init__(self, url: str, workers: int, root: Path, profile: Path | None = None) -> None:
        self.root = root
        self.profile = profile
        self.topic = f"lbaas-bench-{uuid.uuid4().hex[:8]}"
        self.config = root / "lbaas.toml"
        self.config.write_text(
            f"[database]\nconnection = '{url}'\n[messaging]\ntransport_url = '{RABBIT}'\n"
            f"topic = '{self.topic}'\n[controller]\ndrivers = 'fake'\n"
            "[networking]\nmanagement_network = 'bench-mgmt'\nnetworks = ["
            + ", ".join(f"{{name = 'bench-{k}', subnet_name = 'bench-{k}-subnet', "
                        f"cidr = '10.{200 + n}.0.0/16', gateway_ip = '10.{200 + n}.0.1', "
                        f"allocation_start = '10.{200 + n}.0.10', "
                        f"allocation_end = '10.{200 + n}.255.200'}}"
                        for n, k in enumerate(("vip", "members", "mgmt")))
            + "]\n")
        self.ports = [free_port(), free_port()]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for i, port in enumerate(self.ports):
            self._start(f"api-{i}", ["api", "--port", str(port)])
        for i in range(workers):
            self._start(f"worker-{i}", ["worker"])
        self._wait_ready()

    def _start(self, name: str, argv: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
        command = [LBAAS] if self.profile is None else [
            sys.executable, str(HERE / "profile_role.py"), f"{self.profile}-{name}.pstat"]
        with open(self.root / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [*command, *argv, "--config", str(self.config), "--data-dir",
                 str(self.root / "data")], stdout=log, stderr=subprocess.STDOUT, env=env)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        for name, proc in self.procs.items():
            while True:
                assert proc.poll() is None, (self.root / f"{name}.log").read_text()[-3000:]
                log = (self.root / f"{name}.log").read_text(errors="replace")
                if "message bus" in log and "connected" in log:
                    break
                assert time.monotonic() < deadline, f"{name} not ready:\n{log[-3000:]}"
                time.sleep(0.2)

    def pids(self, prefix: str) -> list[int]:
        return [p.pid for name, p in self.procs.items() if name.startswith(prefix)]

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        remove_topic(self.topic)


class ActiveWatch:
    """One thread reads the provisioning status of every load balancer being waited for."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_size=2)
        self.waiting: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def wait(self, lb_id: str, timeout: float = 120) -> None:
        event = threading.Event()
        with self.lock:
            self.waiting[lb_id] = event
        if not event.wait(timeout):
            raise SystemExit(f"load balancer {lb_id} not ACTIVE after {timeout} s")

    def _run(self) -> None:
        lb = t.load_balancer
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.waiting)
            if ids:
                with self.engine.connect() as conn:
                    rows = conn.execute(select(lb.c.id, lb.c.provisioning_status)
                                        .where(lb.c.id.in_(ids))).all()
                with self.lock:
                    for row in rows:
                        if row.provisioning_status in ("ACTIVE", "ERROR"):
                            self.waiting.pop(row.id).set()
            time.sleep(0.002)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.engine.dispose()


def six_calls(client: httpx.Client, n: int, vip: str,
              post: Any) -> None:
    """One load balancer through six POSTs, each waiting for ACTIVE."""
    lb = post(client, "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": f"b{n}", "vip_subnet_id": vip}}, None)
    listener = post(client, "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}}, lb["id"])
    pool = post(client, "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
        lb["id"])
    for host in (10, 11):
        post(client, f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": f"10.201.0.{host}", "protocol_port": 8080}}, lb["id"])
    post(client, "/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3,
        "max_retries": 3}}, lb["id"])


def one_call(client: httpx.Client, n: int, vip: str, post: Any) -> None:
    """The same load balancer through one fully populated POST (Octavia's single-call
    create), waiting for ACTIVE."""
    post(client, "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": f"g{n}", "vip_subnet_id": vip,
        "listeners": [{"protocol": "HTTP", "protocol_port": 80,
                       "default_pool": {"name": "pool"}}],
        "pools": [{"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                   "members": [{"address": f"10.201.0.{host}", "protocol_port": 8080}
                               for host in (10, 11)],
                   "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3,
                                     "max_retries": 3}}]}}, None)


def build(site: Site, watch: ActiveWatch, count: int, concurrency: int,
          shape: Any) -> dict[str, Any]:
    from lbaas.store.seed import subnet_id

    vip = subnet_id("bench-vip-subnet")
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{site.ports[i % 2]}", timeout=60)
               for i in range(concurrency)]
    latencies: list[float] = []

    def post(client: httpx.Client, path: str, body: dict[str, Any], lb_id: str | None) -> Any:
        started = time.perf_counter()
        resp = client.post(path, json=body)
        if resp.status_code != 201:
            raise SystemExit(f"POST {path} -> {resp.status_code}: {resp.text}")
        data = next(iter(resp.json().values()))
        watch.wait(lb_id or data["id"])
        latencies.append(time.perf_counter() - started)
        return data

    def one(n: int) -> None:
        shape(clients[n % concurrency], n, vip, post)

    pids = site.pids("api") + site.pids("worker")
    cpu_before = {pid: cpu_split(pid) for pid in pids}
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    split = {pid: [b - a for a, b in zip(cpu_before[pid], cpu_split(pid), strict=True)]
             for pid in pids}
    cpu = {pid: sum(split[pid]) for pid in pids}
    for client in clients:
        client.close()
    api_cpu = sum(cpu[p] for p in site.pids("api"))
    worker_cpu = sum(cpu[p] for p in site.pids("worker"))
    return {"wall": wall, "lbs_per_s": count / wall, "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99), "api_ms": api_cpu * 1000 / count,
            "worker_ms": worker_cpu * 1000 / count, "posts": len(latencies),
            "api_sys_ms": sum(split[p][1] for p in site.pids("api")) * 1000 / count}


def idle_cpu_ms(site: Site, seconds: float) -> dict[str, float]:
    """CPU (ms) the API and worker processes spend with no request, over ``seconds``:
    their background loops (bus heartbeats, resync scans), inside the build figures too."""
    pids = {"api": site.pids("api"), "worker": site.pids("worker")}
    before = {p: cpu_seconds(p) for group in pids.values() for p in group}
    time.sleep(seconds)
    return {role: sum(cpu_seconds(p) - before[p] for p in group) * 1000
            for role, group in pids.items()}


def report(label: str, result: dict[str, Any], idle: dict[str, float], count: int) -> None:
    total = result["api_ms"] + result["worker_ms"]
    print(f"  {label}: {result['lbs_per_s']:.1f} load balancers/s "
          f"({result['posts'] / result['wall']:.0f} POSTs/s), POST->ACTIVE p50 "
          f"{result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms")
    print(f"    CPU per full load balancer: {total:.1f} ms (API "
          f"{result['api_ms']:.1f} + worker {result['worker_ms']:.1f}; goal "
          f"{GOAL_CPU_MS:.0f}, before {BEFORE_CPU_MS:.0f}); the API's system time "
          f"{result['api_sys_ms']:.1f} ms of it")
    print(f"    idle over the same {result['wall']:.1f} s, no requests: API "
          f"{idle['api']:.0f} ms ({idle['api'] / count:.2f} ms per load balancer), worker "
          f"{idle['worker']:.0f} ms ({idle['worker'] / count:.2f}); not subtracted above")


def list_latency(site: Site, rounds: int = 20) -> list[float]:
    took = []
    with httpx.Client(base_url=f"http://127.0.0.1:{site.ports[0]}", timeout=60) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            resp = client.get("/v2/lbaas/loadbalancers")
            resp.raise_for_status()
            took.append(time.perf_counter() - started)
        count = len(resp.json()["loadbalancers"])
    print(f"  list of {count} load balancers: p50 {pct(took, 0.5) * 1000:.0f} ms, "
          f"p99 {pct(took, 0.99) * 1000:.0f} ms")
    return took


def heartbeat_figure() -> None:
    print("heartbeats (bench/bench_heartbeats.py):", flush=True)
    subprocess.run([sys.executable, str(HERE / "bench_heartbeats.py")], check=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lbs", type=int, default=1000, help="load balancers per run")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", default="1,3", help="worker counts to run, comma-separated")
    p.add_argument("--no-heartbeats", action="store_true")
    p.add_argument("--calls", choices=("six", "single", "both"), default="both",
                   help="which shape to build: six POSTs per load balancer, one, or both")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="run each process under yappi (bench/profile_role.py): "
                        "DIR/<workers>w-<name>.pstat; the CPU figures then include its cost")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(LBAAS) is None:
        raise SystemExit(f"{LBAAS} not found: run make setup")
    print(f"bench-scale: {args.lbs} load balancers (listener, pool, 2 members, monitor "
          f"each) at concurrency {args.concurrency}, 2 API processes, fake drivers, "
          "PostgreSQL + RabbitMQ", flush=True)
    for workers in [int(w) for w in args.workers.split(",")]:
        root = Path(tempfile.mkdtemp(prefix="lbbench"))
        with scratch_postgres("lbaas_bench") as url:
            profile = None
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"{workers}w"
            site = Site(url, workers, root, profile)
            watch = ActiveWatch(url)
            try:
                print(f"{workers} worker{'s' if workers > 1 else ''}:", flush=True)
                if args.calls in ("six", "both"):
                    six = build(site, watch, args.lbs, args.concurrency, six_calls)
                    six_idle = idle_cpu_ms(site, six["wall"])
                    report("6 POSTs per load balancer", six, six_idle, args.lbs)
                    list_latency(site)
                if args.calls in ("single", "both"):
                    graph = build(site, watch, args.lbs, args.concurrency, one_call)
                    graph_idle = idle_cpu_ms(site, graph["wall"])
                    report("1 POST per load balancer (single-call create)", graph,
                           graph_idle, args.lbs)
                print("  RSS: " + ", ".join(f"{name} {rss_mb(p.pid):.0f} MB"
                                            for name, p in site.procs.items()))
            finally:
                watch.close()
                site.stop()
                shutil.rmtree(root, ignore_errors=True)
    if not args.no_heartbeats:
        heartbeat_figure()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
