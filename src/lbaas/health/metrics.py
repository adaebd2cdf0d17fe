"""Health manager counters and their Prometheus text exposition.

Key choice: plain integers in one process (no client library); the API serves them at
``GET /metrics`` (admin only) next to whatever other sources register there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lbaas.wire.heartbeat import REASONS


@dataclass
class HealthMetrics:
    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # a new amphora's heartbeat, while QUEUE_SIZE amphorae were pending
    merged: int = 0  # replaced its amphora's pending heartbeat (deltas added to the newer one)
    failovers: int = 0
    drift_reconciles: int = 0
    status_changes: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def prometheus(self) -> str:
        lines = [
            "# HELP lbaas_health_heartbeats_received_total Heartbeat datagrams received.",
            "# TYPE lbaas_health_heartbeats_received_total counter",
            f"lbaas_health_heartbeats_received_total {self.received}",
            "# HELP lbaas_health_heartbeats_accepted_total Heartbeats verified and applied.",
            "# TYPE lbaas_health_heartbeats_accepted_total counter",
            f"lbaas_health_heartbeats_accepted_total {self.accepted}",
            "# HELP lbaas_health_heartbeats_rejected_total Heartbeats refused, by reason.",
            "# TYPE lbaas_health_heartbeats_rejected_total counter",
        ]
        for reason in sorted(set(REASONS) | set(self.rejected)):
            lines.append(f'lbaas_health_heartbeats_rejected_total{{reason="{reason}"}} '
                         f"{self.rejected[reason]}")
        for name, value, text in (
                ("heartbeats_dropped_total", self.dropped, "Heartbeats dropped: queue full."),
                ("heartbeats_merged_total", self.merged,
                 "Heartbeats that replaced their amphora's unwritten one (deltas kept)."),
                ("failovers_requested_total", self.failovers,
                 "Amphorae flagged for failover after their heartbeats stopped."),
                ("digest_drift_reconciles_total", self.drift_reconciles,
                 "Reconciles requested because an amphora reported another bundle digest."),
                ("status_changes_total", self.status_changes,
                 "Operating status values changed by heartbeats.")):
            lines += [f"# HELP lbaas_health_{name} {text}",
                      f"# TYPE lbaas_health_{name} counter", f"lbaas_health_{name} {value}"]
        return "\n".join(lines) + "\n"
