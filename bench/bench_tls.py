"""TLS benchmark (issue 5): a TERMINATED_HTTPS listener vs a hand-written HAProxy TLS config.

Same site as bench_dataplane (its own ``lbaas serve`` and random 10.24x networks, two demo
backends, a client namespace for the load generators and a namespace for the hand-written
HAProxy; ``bench_dataplane.start_site``). One RSA-2048 certificate made with openssl goes into
the server's key manager as a PKCS12 secret (as Octavia's cookbook does) and, as PEM, into the
hand-written config. Three loads per path, paths alternated in rounds: wrk over keep-alive
connections (requests/s), wrk with ``Connection: close`` (a new TLS connection per request;
wrk resumes sessions: HAProxy's share of resumed ones is shown), and parallel ``openssl s_time
-new`` (full handshakes only, no request). Key choice: the verdict is the median of same-round
ratios lbaas/hand-written, which cancels most of the drift of a shared machine's other load;
both HAProxies have been reloaded once before the load (see ``start_hand_tls``).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench_dataplane import start_site
from dataplane_kit import Netns, ensure_wrk, pids_in, run_wrk, sh, wrk_script
from dataplane_site import BACKEND_PORT, LBS, Api, Site, haproxy_cli, reachable, stop, until

TARGET = 0.95
HAND = "hand-written HAProxy"
VIP = "lbaas TERMINATED_HTTPS"
HAND_TLS = """# hand-written: what an operator would write for the same job
global
    maxconn 8000
    stats socket {sock} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s

frontend tls
    bind {vip}:443 ssl crt {pem}
    default_backend app

backend app
    balance roundrobin
{servers}
"""


def make_cert(work: Path) -> tuple[Path, Path]:
    """(PKCS12 for the key manager, PEM cert+key for the hand-written HAProxy)."""
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=www.example.com", "-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt"))
    sh("openssl", "pkcs12", "-export", "-inkey", str(work / "tls.key"), "-in",
       str(work / "tls.crt"), "-passout", "pass:", "-out", str(work / "tls.p12"))
    pem = work / "tls.pem"
    pem.write_bytes((work / "tls.crt").read_bytes() + (work / "tls.key").read_bytes())
    pem.chmod(0o600)
    return work / "tls.p12", pem


def build_tls_lb(api: Api, site: Site, p12: Path, backends: list[str]) -> str:
    resp = api.http.post("/key-manager/v1/secrets", json={
        "name": "bench-tls", "payload": base64.b64encode(p12.read_bytes()).decode(),
        "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64"})
    if resp.status_code != 201:
        raise SystemExit(f"POST secret -> {resp.status_code}: {resp.text}")
    ref = resp.json()["secret_ref"]
    lb, _ = api.timed("", LBS, {"loadbalancer": {
        "name": "bench-tls", "vip_subnet_id": site.subnet_id("pub")}})
    listener, _ = api.timed(lb["id"], "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": ref}})
    pool, _ = api.timed(lb["id"], "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    for address in backends:
        api.timed(lb["id"], f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": address, "protocol_port": BACKEND_PORT,
            "subnet_id": site.subnet_id("priv")}})
    time.sleep(3.0)  # the agent's coalesced reload after runtime member additions (1.5 s quiet)
    return str(lb["vip_address"])


def start_hand_tls(site: Site, hand: Netns, client: Netns, pem: Path, backends: list[str],
                   stack: ExitStack) -> Path:
    sock = site.dir / "hand-tls.sock"
    servers = "\n".join(f"    server b{i} {a}:{BACKEND_PORT}" for i, a in enumerate(backends))
    cfg = site.dir / "hand-tls.cfg"
    cfg.write_text(HAND_TLS.format(sock=sock, vip=site.ip("pub", 6), pem=pem, servers=servers))
    proc = hand.popen("haproxy", "-W", "-f", str(cfg), stdout=subprocess.DEVNULL,
                      stderr=subprocess.STDOUT)
    stack.callback(stop, proc)
    until(lambda: reachable(client, site.ip("pub", 6), 443), "hand-written HAProxy (TLS)", 15)
    # The amphora's HAProxy has been reloaded once (after the members); a fresh HAProxy was
    # measured 1.3-2x slower on new TLS connections than the same one after a reload, so the
    # hand-written one is reloaded once too (master-worker: SIGUSR2; `ip netns exec` execs).
    workers = set(pids_in(hand.name)) - {proc.pid}
    proc.send_signal(signal.SIGUSR2)
    until(lambda: (set(pids_in(hand.name)) - {proc.pid}).isdisjoint(workers) and reachable(
        client, site.ip("pub", 6), 443), "hand-written HAProxy reloaded", 15)
    return sock


def s_time(client: Netns, host: str, procs: int, seconds: float) -> float:
    """Full TLS handshakes per second from ``procs`` parallel ``openssl s_time -new``."""
    runs = [client.popen("openssl", "s_time", "-connect", f"{host}:443", "-new", "-time",
                         f"{seconds:g}", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(procs)]
    total = 0.0
    for proc in runs:
        out = proc.communicate(timeout=seconds + 60)[0].decode(errors="replace")
        found = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        if not found:
            raise RuntimeError(f"cannot read openssl s_time's output:\n{out}")
        total += int(found.group(1)) / max(float(found.group(2)), 1e-9)
    return total


def ssl_sessions(sock: Path) -> tuple[int, int]:
    """(TLS sessions, resumed ones) summed over the FRONTEND rows of ``show stat``."""
    lines = haproxy_cli(sock, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    total = reused = 0
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("svname") == "FRONTEND":
            total += int(row.get("ssl_sess") or 0) + int(row.get("ssl_reused_sess") or 0)
            reused += int(row.get("ssl_reused_sess") or 0)
    return total, reused


def reuse_share(sock: Path, before: tuple[int, int]) -> float:
    """Share of the TLS connections since ``before`` that HAProxy resumed."""
    total, reused = ssl_sessions(sock)
    return (reused - before[1]) / max(1, total - before[0])


def measure(args: argparse.Namespace, site: Site, client: Netns, wrk: str,
            paths: dict[str, tuple[str, Path]]) -> dict[str, dict[str, list[float]]]:
    keep = {n: wrk_script(site.dir / f"k{i}.lua", [(h, 443)]) for i, (n, (h, _)) in
            enumerate(paths.items())}
    close = {}
    for i, (name, (host, _)) in enumerate(paths.items()):
        close[name] = wrk_script(site.dir / f"c{i}.lua", [(host, 443)])
        close[name].write_text(close[name].read_text() + 'wrk.headers["Connection"] = "close"\n')
    res: dict[str, dict[str, list[float]]] = {n: {} for n in paths}
    order = list(paths)
    for name, (host, _) in paths.items():  # warm-up
        run_wrk(client, wrk, keep[name], f"https://{host}/", args.threads, args.connections, 1)
    for r in range(args.rounds):
        for name in order[r % 2:] + order[:r % 2]:
            host, sock = paths[name]
            url = f"https://{host}/"
            ka = run_wrk(client, wrk, keep[name], url, args.threads, args.connections,
                         args.duration)
            before = ssl_sessions(sock)
            cc = run_wrk(client, wrk, close[name], url, args.threads, args.connections,
                         args.duration)
            reused = reuse_share(sock, before)
            full = s_time(client, host, args.stime, args.duration)
            for key, value in (("req/s keep-alive", ka.rps), ("req/s Conn: close", cc.rps),
                               ("full handshakes/s", full)):
                res[name].setdefault(key, []).append(value)
            res[name].setdefault("errors", []).append(ka.errors + cc.errors)
            res[name].setdefault("resumed", []).append(reused)
            print(f"  round {r + 1}/{args.rounds} {name:<22} keep-alive {ka.rps:>7.0f} req/s"
                  f"  Connection: close {cc.rps:>6.0f} req/s (resumed {reused:.0%})"
                  f"  s_time -new {full:>6.0f}/s", flush=True)
    return res


def report(res: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    print(f"\n== TLS termination (issue 5): wrk -t{args.threads} -c{args.connections} and "
          f"{args.stime} x openssl s_time -new, median of {args.rounds} x {args.duration:g} s, "
          "RSA-2048 certificate, from a client namespace ==")
    keys = ["req/s keep-alive", "req/s Conn: close", "full handshakes/s"]
    print(f"{'path':<24}" + "".join(f"{k:>20}" for k in keys) + f"{'errors':>8}  resumed")
    for name in (HAND, VIP):
        print(f"{name:<24}" + "".join(f"{statistics.median(res[name][k]):>20.0f}" for k in keys)
              + f"{sum(res[name]['errors']):>8.0f}  {statistics.median(res[name]['resumed']):.0%}")
    cells = ""
    for k in keys:
        ratio = statistics.median(v / h for v, h in zip(res[VIP][k], res[HAND][k], strict=True))
        cells += f"{f'x{ratio:.3f} ' + ('PASS' if ratio >= TARGET else 'MISS'):>20}"
    print(f"{'lbaas / hand (same round)':<24}{cells}   target >= {TARGET:g}")


def run(args: argparse.Namespace, stack: ExitStack) -> dict[str, dict[str, list[float]]]:
    wrk = ensure_wrk()
    site, api, client, hand = start_site(args, stack)
    backends = site.backends(args.backends)
    p12, pem = make_cert(site.dir)
    vip = build_tls_lb(api, site, p12, backends)
    until(lambda: reachable(client, vip, 443), "VIP answering on 443", 30)
    amp_sock = next(site.dir.glob("amphorae/*/agent/run/haproxy.sock"))
    hand_sock = start_hand_tls(site, hand, client, pem, backends, stack)
    print(f"load from namespace {client.name}: VIP {vip}:443, hand-written "
          f"{site.ip('pub', 6)}:443", flush=True)
    return measure(args, site, client, wrk, {HAND: (site.ip("pub", 6), hand_sock),
                                             VIP: (vip, amp_sock)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", type=int, default=2, help="demo backends (2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--stime", type=int, default=4, help="parallel openssl s_time (4)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per path (3)")
    args = p.parse_args(argv)
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("haproxy", "ip", "openssl")):
        print("bench_tls needs root, haproxy, iproute2 and openssl", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        try:
            res = run(args, stack)
        finally:
            print("cleaning up: HAProxy, backends, lbaas serve, lbaas teardown, namespaces",
                  flush=True)
    report(res, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything the bench made was removed", file=sys.stderr)
        sys.exit(130)
