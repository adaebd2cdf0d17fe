"""Fleet benchmark: amphorae on lab hosts (``lbaas lab``) against the local host, in one run.

Prints, each beside its side-by-side reference:
1. POST->ACTIVE of a load balancer whose amphora is built on a lab host (through its
   host-agent, legs on VXLAN segments) vs on the controller's own machine (the local drivers, a
   second ``lbaas serve`` on networks of its own);
2. requests/s through a VIP whose members sit on two other hosts (every request crosses the
   overlay twice more) vs one whose members sit on the amphora's own host (ratio, target >= 0.9),
   and beside it the CPU per request of the processes on the data path (wrk, the amphora's,
   the members'; softirq work is charged to the process it interrupts), a figure the load of
   other jobs on the machine moves far less than requests/s;
3. the outage a client sees at the VIP when the amphora's host is killed (``lbaas lab
   kill-host``): SINGLE (target <= 5 s), ACTIVE_STANDBY MASTER (target <= 1 s).

wrk runs in the lab's client namespace on the external segment. Each lab is removed with
``lbaas lab down`` (also on error). Run by ``make bench-fleet``; ``--help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fleet"))

from dataplane_kit import ensure_wrk, parse_wrk
from fleet_lab import BIN, FleetLab, Probe, until

from lbaas.drivers.local import names

BACKENDS = {"h2": ("10.213.10.202", "10.213.10.212"), "h3": ("10.213.10.203",),
            "h1": ("10.213.10.201", "10.213.10.211")}
REF_NETS = (("ref-public", "10.214.4"), ("ref-private", "10.214.10"), ("ref-mgmt", "10.214.200"))


def post_to_active(lab_or_ref: Any, count: int) -> list[float]:
    times = []
    for i in range(count):
        started = time.monotonic()
        lb = lab_or_ref.load_balancer(f"t{i}")
        times.append(time.monotonic() - started)
        lab_or_ref.api("DELETE", f"/v2/lbaas/loadbalancers/{lb['id']}")
        assert until(lambda lb=lb: _gone(lab_or_ref, lb["id"]), 30)
    return times


def _gone(site: Any, lb_id: str) -> bool:
    try:
        return bool(site.lb_status(lb_id) == "DELETED")
    except AssertionError:
        return True


class LocalReference(FleetLab):
    """A plain ``lbaas serve`` (local drivers, no fleet) on its own networks: the reference."""

    def up(self, hosts: int = 0, extra_settings: str = "") -> None:
        self.data.mkdir(parents=True)
        config = self.data / "ref.toml"
        port = _free_port()
        nets = "".join(
            f"[[networking.networks]]\nname = \"{n}\"\nsubnet_name = \"{n}-subnet\"\n"
            f"cidr = \"{p}.0/24\"\ngateway_ip = \"{p}.1\"\nallocation_start = \"{p}.10\"\n"
            f"allocation_end = \"{p}.200\"\n\n" for n, p in REF_NETS)
        config.write_text(f'data_dir = "{self.data}"\n[api]\nport = {port}\n[networking]\n'
                          f'management_network = "ref-mgmt"\n\n{nets}')
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.root / "serve.log", "ab")
        self.serve = subprocess.Popen([str(BIN / "lbaas"), "serve", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT)
        log.close()
        assert until(self._answers, 30), self.log()

    @staticmethod
    def subnet_id(network: str) -> str:
        return FleetLab.subnet_id(network.replace("lab-", "ref-"))

    def down(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            self.serve.wait(30)
        subprocess.run([str(BIN / "lbaas"), "teardown", "--config", str(self.config)],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk_through(lab: FleetLab, wrk: str, vip: str, seconds: float, connections: int) -> Any:
    out = subprocess.run(["ip", "netns", "exec", f"lbh{lab.tag}-client", wrk, "-t1",
                          f"-c{connections}", f"-d{seconds:g}s", "--latency", f"http://{vip}/"],
                         capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(out.stdout + out.stderr)


def data_path_namespaces(lab: FleetLab, lb: dict[str, Any], members: tuple[str, ...]) -> list[str]:
    """The amphora's two namespaces (HAProxy is in the data one) and the members'."""
    spaces = []
    for amp in lab.amphorae(lb["id"]):
        compute = str(amp["compute_id"]).split("/", 1)[-1]
        spaces += [compute, names.data_netns_of(compute)]
    return spaces + [names.backend_netns(m) for m in members]


def cpu_seconds(namespaces: list[str]) -> float:
    """User + system CPU so far of every process in ``namespaces`` (softirq work done while
    one of them runs, e.g. a veth's receive path inside its send, is charged to it)."""
    ticks = 0
    for ns in namespaces:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    lab = FleetLab()
    try:
        lab.up(3)
        across = lab.load_balancer("across")  # empty fleet: h1
        same = lab.load_balancer("same")  # then the least loaded: h2
        hosts = {lab.host_of(lab.amphorae(lb["id"])[0]) for lb in (across, same)}
        assert hosts == {"h1", "h2"}, hosts
        for host, addresses in BACKENDS.items():
            if host != "h1":
                for address in addresses:
                    lab.backend(host, address)
        members = {"same_host": BACKENDS["h2"],  # beside its amphora on h2
                   "across_overlay": ("10.213.10.202", "10.213.10.203")}  # on h2 and h3
        lab.add_members(across, members["across_overlay"])
        lab.add_members(same, members["same_host"])
        spaces = {"same_host": data_path_namespaces(lab, same, members["same_host"]),
                  "across_overlay": data_path_namespaces(lab, across, members["across_overlay"])}
        figures: dict[str, Any] = {}
        for i in range(args.rounds):
            # alternating order: a neighbour's load that comes and goes biases neither side
            sides = [("same_host", same), ("across_overlay", across)]
            for name, lb in sides if i % 2 == 0 else sides[::-1]:
                cpu = cpu_seconds(spaces[name]) + children_cpu()
                result = wrk_through(lab, wrk, lb["vip_address"], args.seconds,
                                     args.connections)
                cpu = cpu_seconds(spaces[name]) + children_cpu() - cpu
                figures.setdefault(f"{name}_cpu_us", []).append(
                    cpu / max(result.rps * args.seconds, 1) * 1e6)
                figures.setdefault(name, []).append(result.rps)
                figures.setdefault(f"{name}_p50_ms", []).append(result.p50_ms)
                figures.setdefault(f"{name}_errors", []).append(result.errors)
        return figures
    finally:
        lab.down()
        lab.cleanup()


def host_loss(topology: str) -> float:
    lab = FleetLab()
    try:
        lab.up(3)
        flavor = lab.flavor(topology) if topology != "SINGLE" else None
        lb = lab.load_balancer("loss", flavor=flavor)
        for host in ("h2", "h3"):
            lab.backend(host, BACKENDS[host][0])
        lab.add_members(lb, (BACKENDS["h2"][0], BACKENDS["h3"][0]))
        amps = lab.amphorae(lb["id"])
        victim = lab.host_of(next(a for a in amps if a["role"] in ("MASTER", "STANDALONE")))
        probe = Probe(lb["vip_address"])
        probe.start()
        assert until(lambda: probe.answered() >= 20, 10)
        lab.kill_host(victim)
        killed = time.monotonic() - 1.0
        recovered = until(lambda: any(r is None for t, r in probe.results if t >= killed)
                          and all(r is not None for _, r in probe.results[-10:]), 60)
        time.sleep(1)
        probe.stop.set()
        probe.join()
        if not recovered:
            print(f"{topology}: the VIP did not answer again within 60 s; controller log:\n"
                  f"{lab.log()[-3000:]}", flush=True)
        return probe.outage_after(killed, 90)
    finally:
        lab.down()
        lab.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=5, help="POST->ACTIVE samples per side")
    parser.add_argument("--seconds", type=float, default=4.0, help="each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6, help="wrk runs per side, alternating")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    wrk = ensure_wrk()
    figures: dict[str, Any] = {}

    ref = LocalReference()
    try:
        ref.up()
        figures["create_local_s"] = post_to_active(ref, args.creates)
    finally:
        ref.down()
    lab = FleetLab()
    try:
        lab.up(3)
        figures["create_lab_host_s"] = post_to_active(lab, args.creates)
    finally:
        lab.down()
        lab.cleanup()
        lab.cleanup()
    figures.update(throughput(args, wrk))
    figures["outage_single_s"] = host_loss("SINGLE")
    figures["outage_active_standby_s"] = host_loss("ACTIVE_STANDBY")

    med = statistics.median
    local, remote = med(figures["create_local_s"]), med(figures["create_lab_host_s"])
    same, across = med(figures["same_host"]), med(figures["across_overlay"])
    paired = [a / b for a, b in zip(figures["across_overlay"], figures["same_host"], strict=True)]
    print(f"\nfleet bench ({args.creates} creates per side; wrk -t1 -c{args.connections} "
          f"-d{args.seconds:g}s x {args.rounds} rounds from the lab's client namespace)")
    print(f"  POST->ACTIVE  local host      median {local:.2f} s   "
          f"(all: {', '.join(f'{t:.2f}' for t in figures['create_local_s'])})")
    print(f"  POST->ACTIVE  lab host        median {remote:.2f} s   "
          f"(all: {', '.join(f'{t:.2f}' for t in figures['create_lab_host_s'])})  "
          f"ratio lab/local {remote / local:.2f}")
    print(f"  req/s via VIP members on the amphora's host   {same:9.0f}  "
          f"p50 {med(figures['same_host_p50_ms']):.2f} ms")
    rounds = ", ".join(f"{r:.2f}" for r in paired)
    print(f"  req/s via VIP members on two other hosts      {across:9.0f}  "
          f"p50 {med(figures['across_overlay_p50_ms']):.2f} ms")
    print(f"  ratio across/same: median of the rounds' ratios {med(paired):.2f} (target >= 0.9; "
          f"per round: {rounds}; ratio of the medians {across / same:.2f})")
    cpu_same, cpu_across = med(figures["same_host_cpu_us"]), med(figures["across_overlay_cpu_us"])
    print(f"  CPU per request (wrk, HAProxy, members)      same host {cpu_same:.1f} us, across "
          f"{cpu_across:.1f} us: ratio same/across {cpu_same / cpu_across:.2f} (medians; across "
          f"per round: {', '.join(f'{c:.0f}' for c in figures['across_overlay_cpu_us'])})")
    print(f"  host lost, SINGLE: outage at the VIP          {figures['outage_single_s']:.2f} s "
          f"(target <= 5 s)")
    print(f"  host lost, ACTIVE_STANDBY MASTER: outage      "
          f"{figures['outage_active_standby_s']:.2f} s (target <= 1 s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    tempfile.tempdir = "/tmp"
    raise SystemExit(main())
