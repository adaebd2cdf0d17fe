"""API benchmark: list throughput, latency, server CPU per request and POST->ACTIVE time.

Starts ``lbaas serve`` as a real subprocess (SQLite in a temporary data dir, fake drivers),
builds a fleet of load balancers through the HTTP API, then drives
``GET /v2/lbaas/loadbalancers`` with N keep-alive connections for a fixed time. Key choice: the
load generator is a raw-socket asyncio client in a *separate process*, so its CPU neither
counts against the server (whose CPU comes from /proc/<pid>/stat) nor steals the server's
interpreter. Run by ``make bench-api``; ``--help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LBS = "/v2/lbaas/loadbalancers"
TARGET_RPS = 500.0
TARGET_ACTIVE_MS = 50.0
# Upstream Octavia 19.0.0 on this machine kind (same fleet, same GET, fake-free amphora driver).
UPSTREAM_RPS = 25.0
UPSTREAM_CPU_MS = 55.0
UPSTREAM_ACTIVE_S = (0.43, 0.71)
VIP_SUBNETS = ("public-subnet", "private-subnet")


# ---- server process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(data_dir: Path, port: int) -> list[str]:
    script = Path(sys.executable).with_name("lbaas")
    base = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from lbaas.main.cli import main; sys.exit(main())"]
    # The fake drivers always: "auto" would pick the local data plane when run as root.
    config = data_dir / "bench.toml"
    config.write_text('[controller]\ndrivers = "fake"\n')
    return [*base, "serve", "--config", str(config), "--data-dir", str(data_dir),
            "--port", str(port), "--host", "127.0.0.1", "--auth-strategy", "noauth"]


@contextmanager
def running_server(port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A fresh ``lbaas serve`` on ``port``; process and temp dir are removed in all cases."""
    data_dir = Path(tempfile.mkdtemp(prefix="lbaas-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBAAS_")}
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(server_command(data_dir, port), stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        wait_ready(proc, port, data_dir)
        yield proc, data_dir
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_ready(proc: subprocess.Popen[bytes], port: int, data_dir: Path,
               timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (data_dir / "server.log").read_text(errors="replace")
            raise SystemExit(f"lbaas serve exited with {proc.returncode}:\n{log[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("lbaas serve did not answer within 60 s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after "pid (comm)": state is fields[0]; utime and stime are stat fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (nor in iowait) since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


# ---- building the fleet ---------------------------------------------------------------------


@dataclass
class Fleet:
    lbs: int = 0
    created: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    active_ms: list[float] = field(default_factory=list)


class Api:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = self.http.post(path, json=body)
        return resp.status_code, (resp.json() if resp.content else None)

    def lb_status(self, lb_id: str) -> str:
        resp = self.http.get(f"{LBS}/{lb_id}", params={"fields": "provisioning_status"})
        resp.raise_for_status()
        return str(resp.json()["loadbalancer"]["provisioning_status"])

    def wait_active(self, lb_id: str, poll: float = 0.002, timeout: float = 30.0) -> float:
        """Seconds until the load balancer reads ACTIVE (polling every ``poll`` s)."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            status = self.lb_status(lb_id)
            if status == "ACTIVE":
                return time.perf_counter() - start
            if status == "ERROR":
                raise SystemExit(f"load balancer {lb_id} went to ERROR")
            time.sleep(poll)
        raise SystemExit(f"load balancer {lb_id} not ACTIVE after {timeout} s")


def _subnet_id(api: Api, name: str) -> str:
    resp = api.http.get("/networking/v2.0/subnets", params={"name": name})
    if resp.status_code == 200 and resp.json().get("subnets"):
        return str(resp.json()["subnets"][0]["id"])
    from lbaas.store.seed import subnet_id  # the seeded ids are derived from the names

    return subnet_id(name)


def _child(api: Api, fleet: Fleet, kind: str, path: str, body: dict[str, Any],
           lb_id: str) -> str | None:
    """Create one child object; remember a kind whose endpoint is missing and stop trying it."""
    if kind in fleet.skipped:
        return None
    code, data = api.post(path, body)
    if code in (404, 405, 501):
        fleet.skipped[kind] = f"{code} from POST {path}"
        return None
    if code != 201:
        raise SystemExit(f"POST {path} -> {code}: {data}")
    fleet.created[kind] = fleet.created.get(kind, 0) + 1
    api.wait_active(lb_id)
    return str(next(iter(data.values()))["id"])


def build_fleet(api: Api, count: int) -> Fleet:
    fleet = Fleet()
    subnets = [_subnet_id(api, name) for name in VIP_SUBNETS]
    for i in range(count):
        t0 = time.perf_counter()
        code, data = api.post(LBS, {"loadbalancer": {
            "name": f"bench-{i}", "vip_subnet_id": subnets[i % len(subnets)]}})
        if code != 201:
            raise SystemExit(f"POST {LBS} -> {code}: {data}")
        lb_id = data["loadbalancer"]["id"]
        api.wait_active(lb_id)
        fleet.active_ms.append((time.perf_counter() - t0) * 1000)
        fleet.lbs += 1
        listener = _child(api, fleet, "listener", "/v2/lbaas/listeners", {"listener": {
            "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}}, lb_id)
        parent = {"listener_id": listener} if listener else {"loadbalancer_id": lb_id}
        pool = _child(api, fleet, "pool", "/v2/lbaas/pools", {"pool": {
            **parent, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}, lb_id)
        if pool is None:
            continue
        for n in (1, 2):
            _child(api, fleet, "member", f"/v2/lbaas/pools/{pool}/members", {"member": {
                "address": f"192.0.2.{100 + n}", "protocol_port": 8080}}, lb_id)
        _child(api, fleet, "health monitor", "/v2/lbaas/healthmonitors", {"healthmonitor": {
            "pool_id": pool, "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}}, lb_id)
    for kind in ("listener", "pool", "member", "health monitor"):
        if kind not in fleet.created and kind not in fleet.skipped:
            fleet.skipped[kind] = "its parent was skipped"
    return fleet


# ---- load generator (runs in its own process) -------------------------------------------------


async def _worker(port: int, request: bytes, stop_at: float, measure_from: float,
                  latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if status != 200:
                errors.append(f"HTTP {status}")
            if start >= measure_from:
                latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


async def _sample_cpu(pid: int, at: list[float], out: list[tuple[float, float, float]]) -> None:
    """(server, this generator, whole machine) busy CPU seconds at each moment of ``at``."""
    for moment in at:
        await asyncio.sleep(max(0.0, moment - time.perf_counter()))
        out.append((cpu_seconds(pid), time.process_time(), machine_busy_seconds()))


async def _load(port: int, path: str, concurrency: int, warmup: float, duration: float,
                server_pid: int) -> dict[str, Any]:
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Accept: application/json\r\n\r\n").encode()
    now = time.perf_counter()
    measure_from, stop_at = now + warmup, now + warmup + duration
    latencies: list[float] = []
    errors: list[str] = []
    cpu: list[tuple[float, float, float]] = []
    await asyncio.gather(
        _sample_cpu(server_pid, [measure_from, stop_at], cpu),
        *(_worker(port, request, stop_at, measure_from, latencies, errors)
          for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors[:5], "error_count": len(errors),
            "server_cpu_s": cpu[1][0] - cpu[0][0], "generator_cpu_s": cpu[1][1] - cpu[0][1],
            "machine_cpu_s": cpu[1][2] - cpu[0][2]}


def load_main(args: argparse.Namespace) -> int:
    """Entry point of the generator process: prints one JSON line with raw latencies.

    It also samples the server's CPU at the edges of its own measurement window, so the CPU
    and the request count cover exactly the same interval.
    """
    result = asyncio.run(_load(args.port, args.path, args.concurrency, args.warmup,
                               args.duration, args.server_pid))
    print(json.dumps(result))
    return 0


@dataclass
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    errors: int
    server_cores: float  # CPU the server used, in cores (1.0 = one core all the time)
    generator_cores: float
    other_cores: float  # everything else on the machine during the window


def machine_cores() -> int:
    return os.cpu_count() or 1


def run_load(proc: subprocess.Popen[bytes], port: int, args: argparse.Namespace) -> LoadResult:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--load-generator",
           "--port", str(port), "--path", LBS, "--concurrency", str(args.concurrency),
           "--warmup", str(args.warmup),
           "--duration", str(args.duration), "--server-pid", str(proc.pid)]
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True)
    try:
        out, _ = gen.communicate(timeout=args.warmup + args.duration + 120)
    finally:
        stop(gen)
    if gen.returncode != 0:
        raise SystemExit(f"load generator failed with {gen.returncode}")
    data = json.loads(out.decode().strip().splitlines()[-1])
    lat = sorted(data["latencies"])
    if not lat:
        raise SystemExit("no request completed during the measurement window")
    n = len(lat)
    return LoadResult(
        requests=n, rps=n / args.duration, p50_ms=lat[n // 2] * 1000,
        p99_ms=lat[min(n - 1, int(n * 0.99))] * 1000,
        cpu_ms_per_request=data["server_cpu_s"] * 1000 / n, errors=data["error_count"],
        server_cores=data["server_cpu_s"] / args.duration,
        generator_cores=data["generator_cpu_s"] / args.duration,
        other_cores=max(0.0, data["machine_cpu_s"] - data["server_cpu_s"]
                        - data["generator_cpu_s"]) / args.duration)


# ---- report -----------------------------------------------------------------------------------


def report(fleet: Fleet, load: LoadResult, args: argparse.Namespace) -> dict[str, Any]:
    active = statistics.median(fleet.active_ms)
    lo, hi = UPSTREAM_ACTIVE_S
    rows = [
        ("load balancers", f"{fleet.lbs}"),
        *[(f"{kind}s created", f"{n}") for kind, n in fleet.created.items()],
        *[(f"{kind}s SKIPPED", why) for kind, why in fleet.skipped.items()],
        (f"GET {LBS} (c={args.concurrency}, {args.duration:g} s)",
         f"{load.rps:.1f} req/s over {load.requests} requests, {load.errors} errors"),
        ("  latency p50 / p99", f"{load.p50_ms:.2f} ms / {load.p99_ms:.2f} ms"),
        ("  server CPU per request", f"{load.cpu_ms_per_request:.2f} ms"),
        (f"  CPU used (of {machine_cores()} cores)",
         f"server {load.server_cores:.2f}, load generator {load.generator_cores:.2f}, "
         f"other processes {load.other_cores:.2f}"),
        ("  vs target >= 500 req/s", f"x{load.rps / TARGET_RPS:.2f}"),
        ("  vs upstream ~25 req/s", f"x{load.rps / UPSTREAM_RPS:.1f} faster"),
        ("  CPU vs upstream ~55 ms", f"x{UPSTREAM_CPU_MS / load.cpu_ms_per_request:.1f} less"),
        ("POST->ACTIVE median (fake drivers)", f"{active:.1f} ms "
         f"(min {min(fleet.active_ms):.1f}, max {max(fleet.active_ms):.1f})"),
        ("  vs target <= 50 ms", f"x{active / TARGET_ACTIVE_MS:.2f} of budget"),
        ("  vs upstream 0.43-0.71 s", f"x{lo * 1000 / active:.0f}-{hi * 1000 / active:.0f} faster"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    verdict = {
        "rps_ok": load.rps >= TARGET_RPS,
        "post_active_ok": active <= TARGET_ACTIVE_MS,
    }
    print()
    print("targets: " + ", ".join(f"{k}={'PASS' if v else 'MISS'}" for k, v in verdict.items()))
    return {"lbs": fleet.lbs, "created": fleet.created, "skipped": fleet.skipped,
            "rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
            "cpu_ms_per_request": load.cpu_ms_per_request, "errors": load.errors,
            "server_cores": load.server_cores, "generator_cores": load.generator_cores,
            "other_cores": load.other_cores,
            "post_active_median_ms": active, **verdict}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lbs", type=int, default=100, help="load balancers to create (100)")
    p.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (8)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    p.add_argument("--port", type=int, default=0, help="server port (a free one)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--load-generator", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--path", default=LBS, help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_generator:
        return load_main(args)
    # Turn SIGTERM into SystemExit so the server and its temp dir are cleaned up as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = args.port or free_port()
    with running_server(port) as (proc, _):
        api = Api(f"http://127.0.0.1:{port}")
        print(f"lbaas serve pid {proc.pid} on port {port}; creating {args.lbs} load balancers "
              "with a listener, a pool, two members and a health monitor each", flush=True)
        t0 = time.perf_counter()
        fleet = build_fleet(api, args.lbs)
        print(f"fleet built in {time.perf_counter() - t0:.1f} s; measuring GET {LBS} for "
              f"{args.warmup:g}+{args.duration:g} s at concurrency {args.concurrency}",
              flush=True)
        load = run_load(proc, port, args)
        figures = report(fleet, load, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped and its data dir removed", file=sys.stderr)
        sys.exit(130)
