"""Which lbaas instance owns a bridge: a mark in the bridge's ``ifalias``.

Bridge names derive from network ids, and network ids from network names (``store/seed.py``),
so two data directories with the default networks compute the same bridges. Without a mark the
second instance would plug its amphorae into the first one's bridges, hand out the same
management addresses, and one's leftover amphora would answer the other's agent calls.

Key choice: the mark lives on the bridge itself (``ip link set dev lbr… alias "lbaas
owner=<data dir>"``): it exists exactly as long as the bridge, needs no host-wide state that
could go stale, and anyone can read it (``ip -d link show``, /sys/class/net/<bridge>/ifalias).
An instance refuses a bridge marked by another whose data directory still exists; a mark whose
directory is gone is stale and taken over (with a warning). An unmarked bridge (made by an
older lbaas) is claimed by the first instance that ensures it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lbaas.drivers.base import DriverError

MARK_PREFIX = "lbaas owner="
IFALIAS_MAX = 255  # IFALIASZ 256 with its NUL
SYS_NET = Path("/sys/class/net")


class BridgeOwnedElsewhere(DriverError):
    """A bridge this instance needs belongs to another lbaas instance (its data directory)."""

    def __init__(self, bridge: str, what: str, owner: str, mine: Path) -> None:
        self.bridge, self.owner = bridge, owner
        super().__init__(
            f"bridge {bridge} ({what}) belongs to the lbaas instance with data directory "
            f"{owner}, not to this one ({mine}). Two instances must not share networks: stop "
            f"the other and run `lbaas teardown --data-dir {owner}`, or give this instance its "
            f"own networks in its settings file: [[networking.networks]] entries with other "
            f"names and CIDRs (the bridge names derive from the network names), and "
            f"[networking] management_network naming its own management network")


def mark_for(data_dir: Path) -> str:
    """The ifalias text that marks ``data_dir``'s bridges (a hash when the path is too long)."""
    path = str(Path(data_dir).resolve())
    mark = MARK_PREFIX + path
    if len(mark.encode()) <= IFALIAS_MAX:
        return mark
    digest = hashlib.sha256(path.encode()).hexdigest()[:16]
    tail = path.encode()[-(IFALIAS_MAX - len(MARK_PREFIX) - 20):].decode(errors="ignore")
    return f"{MARK_PREFIX}sha256:{digest} …{tail}"


def owner_dir(mark: str) -> str:
    """The data directory a mark names (as far as it says)."""
    return mark.removeprefix(MARK_PREFIX)


def read_mark(bridge: str) -> str | None:
    """The bridge's owner mark; None when it has none (or the bridge does not exist)."""
    try:
        text = (SYS_NET / bridge / "ifalias").read_text().strip()
    except OSError:
        return None
    return text if text.startswith(MARK_PREFIX) else None


def foreign_owner(bridge: str, mine: str) -> str | None:
    """The data directory of another live instance that owns ``bridge``, else None."""
    mark = read_mark(bridge)
    if mark is None or mark == mine:
        return None
    owner = owner_dir(mark)
    if owner.startswith("sha256:") or Path(owner).exists():
        return owner
    return None  # that instance's directory is gone: a stale mark


def marked_bridges(mine: str, prefix: str) -> list[str]:
    """Host bridges named ``prefix…`` that carry the mark ``mine``."""
    if not SYS_NET.is_dir():
        return []
    return sorted(p.name for p in SYS_NET.iterdir()
                  if p.name.startswith(prefix) and read_mark(p.name) == mine)
