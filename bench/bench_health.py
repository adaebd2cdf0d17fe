"""Health benchmark (issue 4): member-down detection and amphora failover, measured at the VIP.

Starts its own ``lbaas serve`` (local drivers, root) on its own random 10.24x networks with two
demo backends, like bench_dataplane. A SINGLE load balancer with an HTTP health monitor (delay 1,
max_retries_down 1..3) gives the time from a backend's ``POST /healthcheck/down`` to its member
reading ERROR through the API; then every process in its amphora is frozen and killed (a crash:
nobody says goodbye) while a probe sends a request through the VIP every 50 ms on a new
connection. An ACTIVE_STANDBY load balancer (made with a flavor) has its MASTER killed the same
way. Key choice: the server's [health] settings are used as a user would: defaults first, and
only if the SINGLE target is missed, a second server with interval 0.5 s / timeout 1.5 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any

import httpx
from dataplane_kit import Netns, pids_in, sh
from dataplane_site import LBS, ROLES, Api, Site, lbaas, make_site, serve, start, stop, until

from lbaas.settings import HealthSettings

PORT = 8080
PROBE_PERIOD = 0.05
PROBE_TIMEOUT = 0.25
TARGET_SINGLE, TARGET_AS, TARGET_BACKUP = 5.0, 1.0, 5.0
AMPS = "/v2/octavia/amphorae"
SEEN: set[str] = set()  # every amphora namespace this run saw, removed at the end if left


class Probe(threading.Thread):
    """GET / through the VIP every 50 ms on a new connection; records (start, ok)."""

    def __init__(self, vip: str) -> None:
        super().__init__(daemon=True)
        self.vip = vip
        self.results: list[tuple[float, bool]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            self.results.append((started, self._once()))
            self.halt.wait(max(0.0, PROBE_PERIOD - (time.monotonic() - started)))

    def _once(self) -> bool:
        try:
            with socket.create_connection((self.vip, 80), timeout=PROBE_TIMEOUT) as s:
                s.settimeout(PROBE_TIMEOUT)
                s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        except OSError:
            return False
        return data.startswith(b"HTTP/1.1 200")

    def ok_since(self, moment: float) -> int:
        return sum(1 for t, ok in self.results if ok and t > moment)

    def outage(self, since: float) -> float:
        """First failed probe (started after ``since``) to the first success after the last."""
        failed = [t for t, ok in self.results if not ok and t >= since]
        if not failed:
            return 0.0
        after = [t for t, ok in self.results if ok and t > failed[-1]]
        return after[0] - failed[0] if after else float("inf")


def crash(ns: str) -> None:
    """Freeze, then kill, every process in ``ns`` (keepalived gets no chance to resign)."""
    pids = pids_in(ns)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def amphorae(api: Api, lb_id: str) -> list[dict[str, Any]]:
    resp = api.http.get(AMPS, params={"loadbalancer_id": lb_id})
    live = [a for a in resp.json()["amphorae"] if a["status"] == "ALLOCATED"]
    SEEN.update(a["compute_id"] for a in live if a["compute_id"])
    return live


def remove_left_namespaces() -> None:
    left = SEEN & set(sh("ip", "netns", "list", check=False).split())
    for ns in sorted(left):
        print(f"  removing left-over amphora namespace {ns}", flush=True)
        Netns(ns, []).remove()


def build(api: Api, site: Site, name: str, flavor: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "vip_subnet_id": site.subnet_id("pub")}
    if flavor:
        body["flavor_id"] = flavor
    lb, _ = api.timed("", LBS, {"loadbalancer": body})
    lst, _ = api.timed(lb["id"], "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    pool, _ = api.timed(lb["id"], "/v2/lbaas/pools", {"pool": {
        "listener_id": lst["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    hm, _ = api.timed(lb["id"], "/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": pool["id"], "type": "HTTP", "url_path": "/healthcheck", "delay": 1,
        "timeout": 1, "max_retries": 1, "max_retries_down": 1}})
    members = [api.timed(lb["id"], f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
        "address": a, "protocol_port": PORT, "subnet_id": site.subnet_id("priv")}})[0]["id"]
        for a in site.backends(2)]
    return {"lb": lb["id"], "vip": lb["vip_address"], "pool": pool["id"], "hm": hm["id"],
            "members": members}


def member_status(api: Api, ids: dict[str, Any], n: int) -> str:
    resp = api.http.get(f"/v2/lbaas/pools/{ids['pool']}/members/{ids['members'][n]}")
    return str(resp.json()["member"]["operating_status"])


def detection(api: Api, site: Site, ids: dict[str, Any], out: dict[str, Any]) -> None:
    backend = site.backends(2)[1]
    for retries in (1, 2, 3):
        api.timed(ids["lb"], f"/v2/lbaas/healthmonitors/{ids['hm']}",
                  {"healthmonitor": {"max_retries_down": retries}}, method="PUT")
        until(lambda: member_status(api, ids, 1) == "ONLINE", "member ONLINE", 20)
        t0 = time.monotonic()
        httpx.post(f"http://{backend}:{PORT}/healthcheck/down", timeout=2)
        until(lambda: member_status(api, ids, 1) == "ERROR", "member ERROR", 20)
        out[f"detect{retries}"] = time.monotonic() - t0
        httpx.post(f"http://{backend}:{PORT}/healthcheck/up", timeout=2)
        print(f"  max_retries_down {retries}: member ERROR after {out[f'detect{retries}']:.2f} s"
              f" (bound {retries + 1} s)", flush=True)
    until(lambda: member_status(api, ids, 1) == "ONLINE", "member ONLINE", 20)


def single_failover(api: Api, ids: dict[str, Any], out: dict[str, Any]) -> None:
    old = amphorae(api, ids["lb"])[0]
    probe = Probe(ids["vip"])
    probe.start()
    until(lambda: probe.ok_since(0) >= 10, "probe through the VIP", 10)
    killed = time.monotonic()
    crash(old["compute_id"])
    until(lambda: any(a["id"] != old["id"] for a in amphorae(api, ids["lb"])), "new amphora", 60)
    out["single_new_amp"] = time.monotonic() - killed
    until(lambda: probe.results[-1][1], "VIP answering again", 30)
    time.sleep(1.0)
    probe.halt.set()
    probe.join(5)
    out["single"] = probe.outage(killed)
    print(f"  SINGLE: outage {out['single']:.2f} s, new amphora ALLOCATED after "
          f"{out['single_new_amp']:.2f} s", flush=True)


def as_failover(api: Api, site: Site, out: dict[str, Any]) -> None:
    profile = api.post("/v2/lbaas/flavorprofiles", {"flavorprofile": {
        "name": "bench-as", "provider_name": "amphora",
        "flavor_data": json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"})}})
    flavor = api.post("/v2/lbaas/flavors", {"flavor": {
        "name": "bench-as", "flavor_profile_id": profile["id"], "enabled": True}})
    ids = build(api, site, "bench-as", flavor["id"])
    roles = {a["role"]: a for a in amphorae(api, ids["lb"])}
    master, backup = roles["MASTER"], roles["BACKUP"]
    probe = Probe(ids["vip"])
    probe.start()
    until(lambda: probe.ok_since(0) >= 10, "probe through the VIP", 15)
    killed = time.monotonic()
    crash(master["compute_id"])

    def replaced() -> bool:
        now = {a["role"]: a["id"] for a in amphorae(api, ids["lb"])}
        return now.get("MASTER") == backup["id"] and now.get("BACKUP") not in (
            None, backup["id"], master["id"])
    until(replaced, "new BACKUP amphora", 60)
    out["as_backup"] = time.monotonic() - killed
    time.sleep(1.5)
    probe.halt.set()
    probe.join(5)
    out["as"] = probe.outage(killed)
    print(f"  ACTIVE_STANDBY: outage {out['as']:.2f} s, new BACKUP ALLOCATED after "
          f"{out['as_backup']:.2f} s", flush=True)


def run_site(health: dict[str, float] | None) -> dict[str, Any]:
    """One server with ``health`` as its [health] section (None: the defaults)."""
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        site = make_site()
        stack.callback(shutil.rmtree, site.dir, ignore_errors=True)
        stack.callback(remove_left_namespaces)
        if health:
            with site.config.open("a") as f:
                f.write("\n[health]\n" + "".join(f"{k} = {v}\n" for k, v in health.items()))
        server, api = serve(site, stack)
        log = site.dir / "server.log"
        print(f"lbaas serve pid {server.pid}, [health] "
              f"{health or 'defaults'}, networks "
              + ", ".join(f"{r} {site.ip(r, 0)}/24" for r in ROLES), flush=True)
        for address in site.backends(2):
            proc = start(lbaas("backend", *site.common, "--subnet", f"{site.net('priv')}-subnet",
                               "--address", address, "--port", str(PORT)),
                         site.dir / f"backend-{address}.log")
            stack.callback(stop, proc)
        for address in site.backends(2):
            until(lambda a=address: _open(a, PORT), f"backend {address}", 30)
        ids = build(api, site, "bench-single")
        until(lambda: all(member_status(api, ids, n) == "ONLINE" for n in (0, 1)),
              "members ONLINE", 20, log)
        detection(api, site, ids, out)
        single_failover(api, ids, out)
        as_failover(api, site, out)
        print("cleaning up: backends, lbaas serve, lbaas teardown, data dir", flush=True)
    return out


def _open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def report(runs: dict[str, dict[str, Any]]) -> None:
    names = list(runs)
    print("\n== Health and failover (issue 4), seconds ==")
    print(f"{'figure (heartbeat interval / timeout)':<44}" + "".join(f"{n:>22}" for n in names)
          + "  reference / target")
    rows = [(f"member ERROR, delay 1 x max_retries_down {n}", f"detect{n}",
             f"bound {n + 1} s", n + 1.0) for n in (1, 2, 3)]
    rows += [("SINGLE: outage at the VIP (50 ms probe)", "single",
              f"target <= {TARGET_SINGLE:g}; Octavia ~60 s + VM boot", TARGET_SINGLE),
             ("SINGLE: kill -> new amphora ALLOCATED", "single_new_amp", "", None),
             ("ACTIVE_STANDBY: outage at the VIP", "as",
              f"target <= {TARGET_AS:g}; Octavia VRRP ~3.7 s", TARGET_AS),
             ("ACTIVE_STANDBY: kill -> new BACKUP", "as_backup",
              f"target <= {TARGET_BACKUP:g}; Octavia ~60 s + VM boot", TARGET_BACKUP)]
    for label, key, ref, bound in rows:
        cells = ""
        for n in names:
            value = runs[n].get(key)
            mark = "" if value is None or bound is None else (
                " PASS" if value <= bound else " MISS")
            cells += f"{'-' if value is None else f'{value:.2f}{mark}':>22}"
        print(f"{label:<44}{cells}  {ref}")


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("haproxy") or not shutil.which("keepalived"):
        print("bench_health needs root, haproxy and keepalived", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    d = HealthSettings()
    runs: dict[str, dict[str, Any]] = {}
    name = f"defaults {d.heartbeat_interval:g} / {d.heartbeat_timeout:g} s"
    print(f"health run 1: [health] defaults, heartbeat_interval {d.heartbeat_interval:g} s, "
          f"heartbeat_timeout {d.heartbeat_timeout:g} s", flush=True)
    runs[name] = run_site(None)
    missed = runs[name]["single"] > TARGET_SINGLE
    if missed or "--also-fast" in sys.argv:
        why = f"SINGLE missed {TARGET_SINGLE:g} s with the defaults" if missed else "--also-fast"
        print(f"{why}: health run 2 with heartbeat_interval 0.5 s, heartbeat_timeout 1.5 s",
              flush=True)
        runs["0.5 / 1.5 s"] = run_site(
            {"heartbeat_interval": 0.5, "heartbeat_timeout": 1.5})
    report(runs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything the bench made was removed", file=sys.stderr)
        sys.exit(130)
