"""CPU and time per GET with ``[api] read_threads`` 4 (GETs on a thread pool) against 0 (on the
event loop, the behaviour before decision 0112), side by side in one session.

Each configuration is a real ``lbaas serve`` (fake drivers) with 30 load balancers; one client
sends sequential keep-alive GETs of the list and of one load balancer. Server CPU comes from
/proc (user + system). Usage: ``.venv/bin/python bench/bench_read_threads.py [--requests N]
[--rounds R]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LBAAS = str(Path(sys.executable).parent / "lbaas")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    return conn.getresponse().read()


def measure(threads: int, requests: int) -> dict[str, tuple[float, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-read-threads-"))
    port = free_port()
    config = tmp / "bench.toml"
    config.write_text(f'[controller]\ndrivers = "fake"\n[api]\nread_threads = {threads}\n')
    proc = subprocess.Popen([LBAAS, "serve", "--config", str(config), "--data-dir",
                             str(tmp / "data"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                get(conn, "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        subnet = json.loads(get(conn, "/networking/v2.0/subnets?name=public-subnet"))
        body = {"loadbalancer": {"vip_subnet_id": subnet["subnets"][0]["id"]}}
        lb_id = ""
        for _ in range(30):
            conn.request("POST", "/v2/lbaas/loadbalancers", json.dumps(body),
                         {"Content-Type": "application/json"})
            lb_id = json.loads(conn.getresponse().read())["loadbalancer"]["id"]
        time.sleep(3)  # all ACTIVE, the server idle
        out = {}
        for name, path in (("list of 30", "/v2/lbaas/loadbalancers"),
                           ("one", f"/v2/lbaas/loadbalancers/{lb_id}")):
            for _ in range(100):
                get(conn, path)
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            for _ in range(requests):
                get(conn, path)
            out[name] = ((cpu_seconds(proc.pid) - cpu0) / requests * 1000,
                         (time.perf_counter() - wall0) / requests * 1000)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for round_no in range(args.rounds):
        on_loop, on_threads = measure(0, args.requests), measure(4, args.requests)
        for name in on_loop:
            (cpu0, wall0), (cpu4, wall4) = on_loop[name], on_threads[name]
            print(f"round {round_no} GET {name}: CPU {cpu0:.2f} ms (loop) -> {cpu4:.2f} ms "
                  f"(threads), x{cpu4 / cpu0:.2f}; time {wall0:.2f} -> {wall4:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
