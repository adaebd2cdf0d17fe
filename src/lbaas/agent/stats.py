"""HAProxy's ``show stat`` over its stats socket, without asyncio: shared by the resident
supervisor (heartbeats) and the worker (the /v1/stats endpoint, draining).

Key choice: ``_socket`` rather than ``socket``, whose enums and selectors would stay resident in
the supervisor of every amphora.
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    StatsRows = dict[str, dict[str, Any]]


def query(sock_path: str, command: str, timeout: float = 1.0) -> str:
    """One command on a HAProxy stats socket; the whole answer."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    finally:
        sock.close()
    return b"".join(chunks).decode(errors="replace")


def parse_show_stat(text: str) -> StatsRows:
    """``show stat`` CSV as {"pxname/svname": {field: int | str}}; empty fields dropped."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    result: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        values = line.split(",")
        row: dict[str, int | str] = {}
        for key, value in zip(header, values, strict=False):
            if not key or value == "":
                continue
            row[key] = int(value) if value.isdigit() else value
        if "pxname" in row and "svname" in row:
            result[f"{row['pxname']}/{row['svname']}"] = row
    return result
