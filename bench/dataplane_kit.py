"""Host plumbing for bench_dataplane.py: bench namespaces, wrk runs, per-namespace memory.

Key choice: every load generator (wrk) runs in one *client* namespace with a leg on the public
bridge and one on the private bridge, so the VIP, the hand-written HAProxy and the backends are
all reached over the same kind of path (veth -> Linux bridge -> veth). Everything made here is
named from a per-run tag and removed by those names (``Netns.remove``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lbaas.drivers.local import names


def sh(*args: str, check: bool = True) -> str:
    proc = subprocess.run(args, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Netns:
    """A namespace with veth legs into host bridges: ``legs`` = [(host_leg, bridge, cidr)]."""

    name: str
    legs: list[tuple[str, str, str]]

    def create(self) -> None:
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for i, (host_leg, bridge, address) in enumerate(self.legs):
            sh("ip", "link", "add", host_leg, "type", "veth", "peer", "name", f"eth{i}",
               "netns", self.name)
            sh("ip", "link", "set", host_leg, "master", bridge, "up")
            sh("ip", "-n", self.name, "addr", "add", address, "dev", f"eth{i}")
            sh("ip", "-n", self.name, "link", "set", f"eth{i}", "up")

    def remove(self) -> None:
        for pid in pids_in(self.name):
            sh("kill", "-9", str(pid), check=False)
        for host_leg, _, _ in self.legs:
            sh("ip", "link", "delete", host_leg, check=False)
        if self.name in sh("ip", "netns", "list", check=False).split():
            sh("ip", "netns", "delete", self.name, check=False)

    def popen(self, *argv: str, **kw: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)  # type: ignore


def pids_in(ns: str) -> list[int]:
    return [int(p) for p in sh("ip", "netns", "pids", ns, check=False).split()]


# ---- memory --------------------------------------------------------------------------------


@dataclass
class Proc:
    pid: int
    what: str
    rss_kb: int
    pss_kb: int
    uss_kb: int  # private pages: what one more amphora adds to the machine


def _what(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    if "lbaas.agent" in text:
        return "lbaas-agent"
    if "haproxy" in text:
        return "haproxy"
    return text[:40]


def netns_memory(ns: str) -> list[Proc]:
    """RSS, PSS and USS of every process in the amphora whose agent namespace is ``ns`` (and in
    its data namespace, where HAProxy runs; the agent's worker is forked from its supervisor
    with the same argv: they are told apart by the parent pid)."""
    out: list[Proc] = []
    pids = pids_in(ns) + pids_in(names.data_netns_of(ns))
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
            what = _what(pid)
        except OSError:
            continue  # exited meanwhile
        rss = int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        pss = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        uss = sum(int(v) for v in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+)", rollup, re.M))
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        if what == "lbaas-agent":
            what = "lbaas-agent worker" if ppid in pids and _what(ppid) == "lbaas-agent" else \
                "lbaas-agent supervisor"
        out.append(Proc(pid, what, rss, pss, uss))
    return sorted(out, key=lambda p: p.what)


def idle_memory(ns: str, timeout: float = 30.0) -> list[Proc]:
    """``netns_memory`` once the agent's worker has exited (``--idle-exit``, 10 s by default)."""
    deadline = time.monotonic() + timeout
    while True:
        procs = netns_memory(ns)
        if not any(p.what == "lbaas-agent worker" for p in procs) or \
                time.monotonic() > deadline:
            return procs
        time.sleep(0.2)


def rss_mb(procs: list[Proc]) -> float:
    return sum(p.rss_kb for p in procs) / 1024


# ---- wrk -------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when missing (root only)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def wrk_script(path: Path, targets: list[tuple[str, int]]) -> Path:
    """A wrk Lua script giving thread i the i-th target (round robin), so one wrk run with
    two threads can load two backends directly with one merged latency histogram."""
    entries = ", ".join(f'{{"{host}", "{port}"}}' for host, port in targets)
    path.write_text(
        f"local targets = {{{entries}}}\nlocal n = 0\n"
        "function setup(thread)\n"
        "  local t = targets[n % #targets + 1]\n  n = n + 1\n"
        "  thread.addr = wrk.lookup(t[1], t[2])[1]\nend\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors)


def run_wrk(client: Netns, wrk: str, script: Path, url: str, threads: int, connections: int,
            seconds: float) -> WrkResult:
    proc = client.popen(wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                        "-s", str(script), url, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode(errors='replace')}")
    return parse_wrk(out.decode(errors="replace"))
