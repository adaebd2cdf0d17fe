"""Where an amphora goes: the least loaded live host of its zone, never beside its peer.

Pure: ``choose`` sees host views and returns a name, so the rules are tested without hosts.
Anti-affinity is strict, as Nova's ``anti-affinity`` server group: the two amphorae of an
ACTIVE_STANDBY pair never share a host, and with a single eligible host the build fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbaas.drivers.base import DriverError

ENABLED = "ENABLED"
DRAINING = "DRAINING"


@dataclass(frozen=True)
class Candidate:
    name: str
    zone: str
    capacity: int
    load: int  # amphorae on it (and being built there)
    live: bool
    state: str = ENABLED


class NoHost(DriverError):
    """No live, enabled host can take the amphora."""


def choose(hosts: list[Candidate], zone: str | None, avoid: set[str]) -> str:
    """The host for a new amphora: live, ENABLED, in ``zone`` (None: any), not in ``avoid``
    (hosts of the load balancer's other amphorae), below capacity; least loaded relative to
    its capacity, then by name."""
    fits = [h for h in hosts if h.live and h.state == ENABLED and h.load < h.capacity
            and (zone is None or h.zone == zone) and h.name not in avoid]
    if not fits:
        why = [f"{h.name}: " + ("down" if not h.live else h.state.lower() if h.state != ENABLED
                                else f"zone {h.zone}" if zone is not None and h.zone != zone
                                else "holds the peer amphora" if h.name in avoid else "full")
               for h in hosts]
        raise NoHost(f"no amphora host can take the amphora (zone {zone or 'any'}): "
                     + ("; ".join(why) or "no hosts are configured"))
    return min(fits, key=lambda h: (h.load / max(h.capacity, 1), h.load, h.name)).name
