"""An nftables table of our own (family ``inet``): written whole, probed, deleted.

Shared by ``host_guard.py`` and ``underlay_guard.py``: each owns one table named
``<prefix><8 hex of the owner mark>``, replaces it in one ``nft -f`` transaction and remembers
what it last wrote (``_written``) so an unchanged sync costs one ``nft list``.
"""

from __future__ import annotations

import hashlib
from typing import Generic, TypeVar

from lbaas.drivers.base import DriverError
from lbaas.drivers.local import netlink as nl

NFT = "nft"
W = TypeVar("W")


def table_name(prefix: str, mark: str) -> str:
    return prefix + hashlib.sha256(mark.encode()).hexdigest()[:8]


class OwnedTable(Generic[W]):
    """``table inet <table>``; ``_written`` is what the last successful write put there."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._written: W | None = None

    async def write(self, rules: str) -> None:
        """Load ``rules`` (a whole-table ruleset) with ``nft -f``."""
        rc, _, err = await nl.run(NFT, "-f", "-", check=False, stdin=rules)
        if rc != 0:
            raise DriverError(f"nft: cannot write table inet {self.table}: {err.strip()}")

    async def exists(self) -> bool:
        rc, _, _ = await nl.run(NFT, "list", "table", "inet", self.table, check=False)
        return rc == 0

    async def remove(self) -> bool:
        """Delete the table; True if there was one."""
        self._written = None
        rc, _, _ = await nl.run(NFT, "delete", "table", "inet", self.table, check=False)
        return rc == 0
