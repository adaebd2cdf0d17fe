"""UDP through an amphora (nftables NAT) vs straight to a member: datagrams/s and round trips.

``python bench/bench_udp.py`` (root; ``make bench`` runs it). A site of its own (random
10.24x networks, see dataplane_site), two ``lbaas backend --udp-port`` members, one load
balancer with a UDP listener and a ROUND_ROBIN pool; a client namespace with a leg on the public
and one on the private bridge sends from the same kind of path to the VIP and to one member.
Two loads per target: ping-pong on one socket (latency) and 64 sockets each keeping one datagram
in flight (rate), plus a new socket per datagram (a new conntrack/NAT entry each).
The Python echo backends bound the rate; the figures compare the two paths on equal terms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack

from dataplane_kit import Netns
from dataplane_site import ROLES, lbaas, make_site, serve, start, stop, until

UDP_PORT = 5300
LOAD = r"""
import json, socket, sys, time, selectors
host, port, mode, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
done, lat, end = 0, [], time.monotonic() + secs
if mode == "pingpong":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5); s.connect((host, port))
    while time.monotonic() < end:
        t = time.perf_counter(); s.send(b"x")
        try: s.recv(64); done += 1; lat.append(time.perf_counter() - t)
        except OSError: pass
elif mode == "newflow":
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5); s.sendto(b"x", (host, port))
            try: s.recv(64); done += 1
            except OSError: pass
else:
    sel = selectors.DefaultSelector()
    for _ in range(64):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
        s.connect((host, port)); s.send(b"x"); sel.register(s, selectors.EVENT_READ)
    while time.monotonic() < end:
        for key, _ in sel.select(0.5):
            try: key.fileobj.recv(64); done += 1; key.fileobj.send(b"x")
            except OSError: key.fileobj.send(b"x")
lat.sort()
print(json.dumps({"rate": done / secs, "p50_us": lat[len(lat) // 2] * 1e6 if lat else None}))
"""


def measure(client: Netns, host: str, port: int, mode: str, secs: float = 3.0) -> dict[str, float]:
    out = subprocess.run(["ip", "netns", "exec", client.name, sys.executable, "-c", LOAD, host,
                          str(port), mode, str(secs)], capture_output=True, text=True,
                         check=True).stdout
    return dict(json.loads(out))


def run(stack: ExitStack) -> None:
    site = make_site()
    stack.callback(subprocess.run, ["rm", "-rf", str(site.dir)])  # runs last
    _server, api = serve(site, stack)
    print(f"lbaas serve on :{site.port}, networks "
          + ", ".join(f"{r} {site.ip(r, 0)}/24" for r in ROLES), flush=True)
    client = Netns(f"lbbu-{site.tag}", [
        (f"lbbu{site.tag}0", site.bridge("pub"), f"{site.ip('pub', 5)}/24"),
        (f"lbbu{site.tag}1", site.bridge("priv"), f"{site.ip('priv', 5)}/24")])
    stack.callback(client.remove)
    client.create()
    members = site.backends(2)
    for address in members:
        blog = site.dir / f"backend-{address}.log"
        proc = start(lbaas("backend", *site.common, "--subnet", f"{site.net('priv')}-subnet",
                           "--address", address, "--udp-port", str(UDP_PORT)), blog)
        stack.callback(stop, proc)
        until(lambda b=blog: "udp backend listening" in b.read_text(), f"backend {address}",
              30, blog)
    lb = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "udp-bench", "vip_subnet_id": site.subnet_id("pub")}})
    api.wait(lb["id"])
    listener = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "UDP", "protocol_port": 53}})
    api.wait(lb["id"])
    pool = api.post("/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}})
    api.wait(lb["id"])
    for address in members:
        api.post(f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": address, "protocol_port": UDP_PORT,
            "subnet_id": site.subnet_id("priv")}})
        api.wait(lb["id"])
    vip = lb["vip_address"]
    until(lambda: measure(client, vip, 53, "pingpong", 0.3)["rate"] > 0, "UDP through VIP", 20)
    rows = []
    for mode, label in (("pingpong", "1 socket ping-pong"), ("inflight", "64 sockets in flight"),
                        ("newflow", "new socket per datagram")):
        via = measure(client, vip, 53, mode)
        direct = measure(client, members[0], UDP_PORT, mode)
        rows.append((label, via, direct))
        print(f"  {label:<26} via VIP {via['rate']:>8.0f}/s   direct {direct['rate']:>8.0f}/s"
              + (f"   p50 {via['p50_us']:.0f} vs {direct['p50_us']:.0f} us"
                 if via.get("p50_us") else ""), flush=True)
    print("\n== UDP through the amphora (nftables) vs direct to a member ==")
    print(f"{'load':<28}{'via VIP /s':>12}{'direct /s':>12}{'ratio':>8}")
    for label, via, direct in rows:
        ratio = via["rate"] / direct["rate"] if direct["rate"] else 0.0
        print(f"{label:<28}{via['rate']:>12.0f}{direct['rate']:>12.0f}{ratio:>8.2f}")
    print(f"cleaning up: backends, lbaas serve, lbaas teardown, data dir {site.dir}", flush=True)


def main() -> int:
    if os.geteuid() != 0:
        print("bench_udp: needs root (namespaces); skipped")
        return 0
    with ExitStack() as stack:
        run(stack)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
