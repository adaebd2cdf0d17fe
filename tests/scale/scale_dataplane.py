"""Real load balancers on a ``Topology`` with the local data plane: demo backends, a load
balancer with a listener, a pool and members, requests through its VIP, and the check that no
amphora namespace or process outlives its row."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from scale_topology import LBAAS, Topology

from lbaas.drivers.local import names


def start_backend(topo: Topology, address: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [LBAAS, "backend", "--config", str(topo.config), "--data-dir", str(topo.data),
         "--subnet", f"{topo.nets['priv']}-subnet", "--address", address, "--port", "8080"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None and b"lbaas backend:" in proc.stdout.readline()
    return proc


def stop_backends(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def wait_lb(topo: Topology, lb_id: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code, body = topo.request("GET", f"/v2/lbaas/loadbalancers/{lb_id}")
        status = body["loadbalancer"]["provisioning_status"] if code == 200 else str(code)
        if status == "ACTIVE":
            return
        assert status != "ERROR" and time.monotonic() < deadline, \
            f"{lb_id} is {status}\n{topo.all_logs()[-4000:]}"
        time.sleep(0.2)


def post_until_accepted(topo: Topology, path: str, body: dict[str, Any], lb_id: str) -> Any:
    """POST once the load balancer takes changes (409 while it settles another one; 503, the
    API's "retry later" when a database call failed for a reason of the moment, is retried as
    a client would, and its cause shown if it lasts)."""
    deadline = time.monotonic() + 120
    while True:
        code, answer = topo.request("POST", path, body)
        if code == 201:
            return answer
        assert code in (409, 503) and time.monotonic() < deadline, \
            (code, answer, topo.all_logs()[-4000:])
        if code == 503:
            time.sleep(0.5)
        wait_lb(topo, lb_id)


def build_real_lb(topo: Topology, name: str, members: list[str]) -> dict[str, Any]:
    code, body = topo.request("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": name, "vip_subnet_id": topo.subnet_id("pub")}})
    assert code == 201, body
    lb = body["loadbalancer"]
    wait_lb(topo, lb["id"])
    listener = post_until_accepted(topo, "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
        lb["id"])["listener"]
    wait_lb(topo, lb["id"])
    pool = post_until_accepted(topo, "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
        lb["id"])["pool"]
    wait_lb(topo, lb["id"])
    member_ids = []
    for address in members:
        member = post_until_accepted(topo, f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": address, "protocol_port": 8080, "subnet_id": topo.subnet_id("priv")}},
            lb["id"])["member"]
        member_ids.append(member["id"])
        wait_lb(topo, lb["id"])
    return {"id": lb["id"], "vip": lb["vip_address"], "pool": pool["id"],
            "members": member_ids}


def fetch(vip: str, timeout: float = 2.0) -> str:
    try:
        with urllib.request.urlopen(f"http://{vip}/", timeout=timeout) as resp:
            return resp.read().decode()
    except OSError as exc:
        return f"ERR {exc}"


class VipProbe:
    """GET every VIP every ``every`` seconds in a thread; remembers each failure."""

    def __init__(self, vips: list[str], every: float = 0.2) -> None:
        self.vips = vips
        self.every = every
        self.ok = 0
        self.failures: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for vip in self.vips:
                answer = fetch(vip)
                if answer.startswith("ERR"):
                    self.failures.append((time.monotonic(), vip, answer))
                else:
                    self.ok += 1
            self._stop.wait(self.every)

    def __enter__(self) -> VipProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def amphora_namespaces(topo: Topology) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    present = {line.split()[0] for line in out.splitlines() if line.strip()}
    homes = topo.data / "amphorae"
    made = {p.name for p in homes.iterdir()} if homes.is_dir() else set()
    ours = made | {names.amphora_netns(r.id) for r in topo.amphorae()}
    ours |= {names.data_netns_of(ns) for ns in ours}  # each amphora's data namespace
    return present & ours


def amphora_processes(topo: Topology) -> dict[str, set[str]]:
    """Amphora namespace -> kinds ("agent", "haproxy") running from this data dir."""
    found: dict[str, set[str]] = {}
    homes = str(topo.data / "amphorae") + "/"
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        text = " ".join(argv)
        match = re.search(re.escape(homes) + r"(amp-[0-9a-f]+)/", text)
        if match is not None:
            kind = "agent" if "lbaas.agent" in text else "haproxy" if "haproxy" in argv[0] \
                else text[:60]
            found.setdefault(match.group(1), set()).add(kind)
    return found


def assert_no_orphans(topo: Topology) -> None:
    """Namespaces = live amphora rows; no process of an amphora that does not exist."""
    rows = topo.amphorae()
    odd = [(r.id, r.status) for r in rows if r.status not in ("ALLOCATED", "DELETED")]
    assert not odd, f"amphora rows neither ALLOCATED nor DELETED: {odd}"
    live = {r.compute_id for r in rows if r.status == "ALLOCATED"}
    spaces = live | {names.data_netns_of(ns) for ns in live}  # both of each
    assert amphora_namespaces(topo) == spaces, (amphora_namespaces(topo), spaces)
    procs = amphora_processes(topo)
    stray = {ns: kinds for ns, kinds in procs.items() if ns not in live}
    assert not stray, f"processes of amphorae that do not exist: {stray}"
    without_agent = [ns for ns in live if "agent" not in procs.get(ns, set())]
    assert not without_agent, f"live amphorae without an agent: {without_agent}"
