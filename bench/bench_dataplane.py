"""Data-plane benchmark: amphora POST->ACTIVE, requests/s through the VIP, amphora memory.

Starts its own ``lbaas serve`` (local drivers, root) on a free port with a short temporary data
dir and its own three networks (random 10.24x.y.0/24, names tagged per run, so nothing collides
with another service or test on the host), two ``lbaas backend`` demo servers on the private
subnet, a hand-written HAProxy in its own namespace with legs on the same two bridges, and a
client namespace from which wrk loads, in turns: the backends directly, the hand-written HAProxy
and the VIP. Key choice: one load generator in one place for all three paths (see
docs/benchmarks.md). Everything is removed at the end, also on error or Ctrl-C. Run by
``make bench``; ``--help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from dataplane_kit import (
    Netns,
    ensure_wrk,
    idle_memory,
    rss_mb,
    run_wrk,
    wrk_script,
)
from dataplane_report import DIRECT, HAND, VIP_RELOADED, VIP_RUNTIME, Figures, report
from dataplane_site import (
    BACKEND_PORT,
    HAND_CFG,
    LBS,
    ROLES,
    Api,
    Site,
    amphora_namespaces,
    backend_connects,
    haproxy_cli,
    haproxy_info,
    lbaas,
    make_site,
    reachable,
    serve,
    start,
    stop,
    until,
)


def agent_phases(site: Site, posted: datetime.datetime) -> dict[str, float]:
    """Seconds from the POST to the agent's first log lines: listening, first bundle applied."""
    amp = amphora_namespaces(site)[0]
    found: dict[str, float] = {}
    for line in (site.dir / "amphorae" / amp / "agent.log").read_text().splitlines():
        for key, marker in (("agent listening", " listening on "),
                            ("HAProxy started", " applied: start")):
            if marker in line and key not in found:
                at = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                found[key] = (at - posted).total_seconds()
    return found


def post_active(api: Api, site: Site, samples: int, fig: Figures) -> None:
    for i in range(samples):
        posted = datetime.datetime.now()
        lb, took = api.timed("", LBS, {"loadbalancer": {
            "name": f"sample-{i}", "vip_subnet_id": site.subnet_id("pub")}})
        fig.active_s.append(took)
        for key, seconds in agent_phases(site, posted).items():
            fig.phases.setdefault(key, []).append(seconds)
        if i == 0:
            fig.bare_mb = rss_mb(idle_memory(amphora_namespaces(site)[0]))
        t0 = time.perf_counter()
        resp = api.http.delete(f"{LBS}/{lb['id']}", params={"cascade": "true"})
        if resp.status_code != 204:
            raise SystemExit(f"DELETE -> {resp.status_code}: {resp.text}")
        api.wait(lb["id"], "DELETED")
        until(lambda: not amphora_namespaces(site), "amphora namespace removal")
        fig.delete_s.append(time.perf_counter() - t0)
        print(f"  sample {i + 1}/{samples}: POST->ACTIVE {took:.3f} s, "
              f"DELETE->gone {fig.delete_s[-1]:.3f} s", flush=True)


def build_lb(api: Api, site: Site, backends: list[str],
             fig: Figures) -> tuple[str, str, str]:
    lb, fig.steps_s["load balancer"] = api.timed("", LBS, {"loadbalancer": {
        "name": "bench", "vip_subnet_id": site.subnet_id("pub")}})
    listener, fig.steps_s["+ listener (HTTP:80)"] = api.timed(
        lb["id"], "/v2/lbaas/listeners", {"listener": {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    pool, fig.steps_s["+ pool (ROUND_ROBIN)"] = api.timed(
        lb["id"], "/v2/lbaas/pools", {"pool": {
            "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    for n, address in enumerate(backends, 1):
        _, fig.steps_s[f"+ member {n} (private subnet)"] = api.timed(
            lb["id"], f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
                "address": address, "protocol_port": BACKEND_PORT,
                "subnet_id": site.subnet_id("priv")}})
    return str(lb["id"]), str(lb["vip_address"]), str(listener["id"])


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Target:
    """One measured path: wrk's targets and the HAProxy CLI socket serving it (if any)."""

    targets: list[tuple[str, int]]
    sock: Path | None = None


def load(site: Site, client: Netns, wrk: str, paths: dict[str, Target],
         args: argparse.Namespace, fig: Figures) -> None:
    scripts = {name: wrk_script(site.dir / f"{name.replace(' ', '_')}.lua", p.targets)
               for name, p in paths.items()}
    urls = {name: f"http://{p.targets[0][0]}:{p.targets[0][1]}/" for name, p in paths.items()}
    order = list(paths)
    for name in order:  # warm-up: ARP, connections, HAProxy's buffer pools
        run_wrk(client, wrk, scripts[name], urls[name], args.threads, args.connections, 1)
    for p in paths.values():
        if p.sock:
            haproxy_cli(p.sock, "clear counters all")
    for r in range(args.rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:  # rotate: no fixed slot
            res = run_wrk(client, wrk, scripts[name], urls[name], args.threads,
                          args.connections, args.duration)
            fig.runs.setdefault(name, []).append(res)
            print(f"  round {r + 1}/{args.rounds} {name:<22} {res.rps:>9.0f} req/s  "
                  f"p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms", flush=True)
    for name, p in paths.items():
        if p.sock:
            connect, reuse = backend_connects(p.sock)
            fig.reuse[name] = reuse / max(1, connect + reuse)


def start_site(args: argparse.Namespace, stack: ExitStack) -> tuple[Site, Api, Netns, Netns]:
    """Server, client and hand-written-HAProxy namespaces, backends; all undone by ``stack``."""
    site = make_site()
    stack.callback(shutil.rmtree, site.dir, ignore_errors=True)
    server, api = serve(site, stack)
    print(f"lbaas serve pid {server.pid} on :{site.port}, data dir {site.dir}, networks "
          + ", ".join(f"{r} {site.ip(r, 0)}/24" for r in ROLES), flush=True)
    client, hand = (Netns(f"lbb{kind}-{site.tag}", [
        (f"lbb{kind}{site.tag}0", site.bridge("pub"), f"{site.ip('pub', host)}/24"),
        (f"lbb{kind}{site.tag}1", site.bridge("priv"), f"{site.ip('priv', host)}/24")])
        for kind, host in (("c", 5), ("h", 6)))
    for ns in (client, hand):
        stack.callback(ns.remove)
        ns.create()
    for address in site.backends(args.backends):
        blog = site.dir / f"backend-{address}.log"
        proc = start(lbaas("backend", *site.common, "--subnet", f"{site.net('priv')}-subnet",
                           "--address", address, "--port", str(BACKEND_PORT)), blog)
        stack.callback(stop, proc)
        until(lambda a=address: reachable(client, a, BACKEND_PORT), f"backend {address}", 30,
              blog)
    return site, api, client, hand


def start_hand(site: Site, hand: Netns, client: Netns, backends: list[str],
               stack: ExitStack) -> Path:
    sock = site.dir / "hand.sock"
    servers = "\n".join(f"    server b{i} {a}:{BACKEND_PORT}" for i, a in enumerate(backends))
    (site.dir / "hand.cfg").write_text(HAND_CFG.format(sock=sock, vip=site.ip("pub", 6),
                                                       servers=servers))
    proc = hand.popen("haproxy", "-W", "-f", str(site.dir / "hand.cfg"),
                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    stack.callback(stop, proc)
    until(lambda: reachable(client, site.ip("pub", 6), 80), "hand-written HAProxy", 15)
    return sock


def run(args: argparse.Namespace, stack: ExitStack) -> Figures:
    wrk = ensure_wrk()
    fig = Figures()
    site, api, client, hand = start_site(args, stack)
    backends = site.backends(args.backends)
    print(f"POST->ACTIVE: {args.samples} amphora load balancers, one at a time", flush=True)
    post_active(api, site, args.samples, fig)
    lb_id, vip, listener_id = build_lb(api, site, backends, fig)
    until(lambda: reachable(client, vip, 80), "VIP answering", 30)
    amp = amphora_namespaces(site)[0]
    amp_dir = site.dir / "amphorae" / amp / "agent"
    amp_sock = amp_dir / "run" / "haproxy.sock"
    sock = start_hand(site, hand, client, backends, stack)
    fig.threads = {"amphora": haproxy_info(amp_sock).get("Nbthread", "?"),
                   "hand-written": haproxy_info(sock).get("Nbthread", "?")}
    if args.show_config:
        print((amp_dir / "conf" / "haproxy.cfg").read_text())
    if args.hold:
        print(f"holding {args.hold:g} s (amphora {amp}, client {client.name})", flush=True)
        time.sleep(args.hold)
    fig.idle = [asdict(p) for p in idle_memory(amp)]
    print(f"load: wrk -t{args.threads} -c{args.connections}, {args.rounds} x "
          f"{args.duration:g} s per path, from namespace {client.name}", flush=True)
    load(site, client, wrk, {DIRECT: Target([(a, BACKEND_PORT) for a in backends]),
                             HAND: Target([(site.ip("pub", 6), 80)], sock),
                             VIP_RUNTIME: Target([(vip, 80)], amp_sock)}, args, fig)
    # A listener change is not a server-line change: the agent reloads HAProxy, which then
    # reads every member from the file instead of keeping the runtime-added servers.
    _, fig.steps_s["PUT listener (reload)"] = api.timed(
        lb_id, f"/v2/lbaas/listeners/{listener_id}",
        {"listener": {"timeout_client_data": 50001}}, method="PUT")
    print("after a reload of the amphora's HAProxy:", flush=True)
    load(site, client, wrk, {HAND: Target([(site.ip("pub", 6), 80)], sock),
                             VIP_RELOADED: Target([(vip, 80)], amp_sock)}, args, fig)
    fig.after_load_mb = rss_mb(idle_memory(amp))
    # The agent's worker has exited: the next change waits for a new one (fork, imports, TLS).
    for step, timeout in (("PUT listener, idle amphora (worker starts)", 50002),
                          ("PUT listener, worker running", 50003)):
        _, fig.steps_s[step] = api.timed(lb_id, f"/v2/lbaas/listeners/{listener_id}",
                                         {"listener": {"timeout_client_data": timeout}},
                                         method="PUT")
    return fig


# ---- report ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=7, help="POST->ACTIVE samples (7)")
    p.add_argument("--backends", type=int, default=2, help="demo backends (2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    p.add_argument("--rounds", type=int, default=3, help="runs per path and phase (3)")
    p.add_argument("--show-config", action="store_true", help="print the amphora's haproxy.cfg")
    p.add_argument("--hold", type=float, default=0, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("haproxy") or not shutil.which("ip"):
        print("bench_dataplane needs root, haproxy and iproute2 (namespaces, bridges)",
              file=sys.stderr)
        return 2
    # SIGTERM becomes SystemExit so the ExitStack cleans up as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        try:
            fig = run(args, stack)
        finally:
            print("cleaning up: backends, lbaas serve, lbaas teardown, bench namespaces",
                  flush=True)
    figures = report(fig, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything the bench made was removed", file=sys.stderr)
        sys.exit(130)
