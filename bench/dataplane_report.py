"""Figures of bench_dataplane.py and the table it prints (targets, ratios, verdicts)."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from dataplane_kit import WrkResult

TARGET_ACTIVE_S = 1.0
OCTAVIA_ACTIVE_S = 60.0  # upstream Octavia booting a VM amphora: about a minute
TARGET_RATIO = 0.95
TARGET_MEM_MB = 20.0

VIP_RUNTIME = "lbaas VIP"
VIP_RELOADED = "lbaas VIP, reloaded"
HAND = "hand-written HAProxy"
DIRECT = "backends directly"


@dataclass
class Figures:
    active_s: list[float] = field(default_factory=list)
    delete_s: list[float] = field(default_factory=list)
    steps_s: dict[str, float] = field(default_factory=dict)
    bare_mb: float = 0.0
    idle: list[dict[str, Any]] = field(default_factory=list)
    after_load_mb: float = 0.0
    runs: dict[str, list[WrkResult]] = field(default_factory=dict)
    reuse: dict[str, float] = field(default_factory=dict)  # share of reused server connections
    threads: dict[str, str] = field(default_factory=dict)
    # per sample: seconds from the POST to the agent listening / to HAProxy started (agent.log)
    phases: dict[str, list[float]] = field(default_factory=dict)


def _median(runs: list[WrkResult]) -> WrkResult:
    return WrkResult(statistics.median(r.rps for r in runs),
                     statistics.median(r.p50_ms for r in runs),
                     statistics.median(r.p99_ms for r in runs), sum(r.errors for r in runs))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(fig: Figures, args: argparse.Namespace) -> dict[str, Any]:
    active = statistics.median(fig.active_s)
    print(f"\n== Control plane -> data plane (median of {len(fig.active_s)}) ==")
    print(f"POST->ACTIVE, amphora load balancer   {active:6.3f} s   (min {min(fig.active_s):.3f},"
          f" max {max(fig.active_s):.3f})   target <= {TARGET_ACTIVE_S:g} s: "
          f"{_verdict(active <= TARGET_ACTIVE_S)}   Octavia with VMs ~{OCTAVIA_ACTIVE_S:g} s: "
          f"x{OCTAVIA_ACTIVE_S / active:.0f} faster")
    for key, values in fig.phases.items():
        print(f"  POST -> {key:<29} {statistics.median(values):6.3f} s   (agent.log)")
    print(f"DELETE (cascade) -> namespace gone    {statistics.median(fig.delete_s):6.3f} s")
    print("steps of the benchmarked load balancer, each request -> ACTIVE:")
    for step, took in fig.steps_s.items():
        print(f"  {step:<34} {took:6.3f} s")
    print(f"  {'total':<34} {sum(fig.steps_s.values()):6.3f} s")

    med = {name: _median(runs) for name, runs in fig.runs.items()}
    ref = med[HAND].rps
    print(f"\n== Requests/s, wrk -t{args.threads} -c{args.connections}, median of "
          f"{args.duration:g} s runs, from a client namespace ==")
    print(f"{'path':<22}{'runs':>5}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'reused':>8}  vs hand-written")
    for name in (DIRECT, HAND, VIP_RUNTIME, VIP_RELOADED):
        res = med[name]
        reuse = f"{fig.reuse[name]:.0%}" if name in fig.reuse else "-"
        print(f"{name:<22}{len(fig.runs[name]):>5}{res.rps:>9.0f}{res.p50_ms:>8.2f}"
              f"{res.p99_ms:>8.2f}{res.errors:>7}{reuse:>8}  x{res.rps / ref:.3f}")
    # Each VIP run is paired with the hand-written run of the same round and phase (adjacent in
    # time), which cancels most of the drift of other load on a shared machine.
    rounds = len(fig.runs[VIP_RUNTIME])
    hand = fig.runs[HAND]
    ratio = statistics.median(v.rps / h.rps for v, h in zip(fig.runs[VIP_RUNTIME], hand[:rounds],
                                                             strict=True))
    ratio_reloaded = statistics.median(v.rps / h.rps for v, h in zip(
        fig.runs[VIP_RELOADED], hand[rounds:], strict=True))
    print(f"VIP / hand-written HAProxy, median of same-round ratios = {ratio:.3f} "
          f"(after a reload {ratio_reloaded:.3f})   "
          f"target >= {TARGET_RATIO}: {_verdict(ratio >= TARGET_RATIO)}")
    print("reused = share of requests sent on an already open server connection; HAProxy "
          "threads (Nbthread): " + ", ".join(f"{k} {v}" for k, v in fig.threads.items()))

    def total(key: str) -> float:
        return sum(p[key] for p in fig.idle) / 1024

    idle, pss, uss = total("rss_kb"), total("pss_kb"), total("uss_kb")
    print("\n== Memory of one idle amphora (every process in its two namespaces) ==")
    print(f"{'process':<24}{'pid':>8}{'RSS MB':>9}{'PSS MB':>9}{'USS MB':>9}")
    for p in fig.idle:
        print(f"{p['what']:<24}{p['pid']:>8}{p['rss_kb'] / 1024:>9.1f}"
              f"{p['pss_kb'] / 1024:>9.1f}{p['uss_kb'] / 1024:>9.1f}")
    over = f"over by {idle - TARGET_MEM_MB:.1f} MB" if idle > TARGET_MEM_MB else "within"
    print(f"{'total':<24}{'':>8}{idle:>9.1f}{pss:>9.1f}{uss:>9.1f}   target <= "
          f"{TARGET_MEM_MB:g} MB RSS: {_verdict(idle <= TARGET_MEM_MB)} ({over})")
    print(f"RSS of the amphora before its first listener: {fig.bare_mb:.1f} MB; after the load "
          f"runs: {fig.after_load_mb:.1f} MB. USS = private pages = what one more amphora adds.")
    verdict = {"post_active_ok": active <= TARGET_ACTIVE_S, "ratio_ok": ratio >= TARGET_RATIO,
               "memory_ok": idle <= TARGET_MEM_MB}
    print("\ntargets: " + ", ".join(f"{k}={_verdict(v)}" for k, v in verdict.items()))
    return {"post_active_median_s": active, "post_active_s": fig.active_s,
            "delete_median_s": statistics.median(fig.delete_s), "steps_s": fig.steps_s,
            "throughput": {k: asdict(v) for k, v in med.items()}, "reuse": fig.reuse,
            "vip_ratio": ratio, "vip_ratio_after_reload": ratio_reloaded,
            "threads": fig.threads, "idle_rss_mb": idle, "idle_pss_mb": pss, "idle_uss_mb": uss,
            "idle_processes": fig.idle, "bare_rss_mb": fig.bare_mb,
            "after_load_rss_mb": fig.after_load_mb, **verdict}
