"""A minimal HTTP/1.1 request reader and response writer for the servers that must see the TLS
connection itself (the host-agent's API, the controller's registration listener): JSON bodies,
``Content-Length`` only, a body cap checked before the body is read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_HEAD = 16 * 1024

REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large"}


async def read_request(reader: asyncio.StreamReader,
                       max_body: int) -> tuple[str, str, bytes] | None:
    """(method, path without query, body), or None at the end of the connection. ValueError:
    a malformed head or a body over ``max_body`` (nothing of it is read)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    if len(head) > MAX_HEAD:
        raise ValueError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            length = int(value.strip())
    if length < 0 or length > max_body:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return method, path.split("?", 1)[0], body


def response(status: int, answer: Any) -> bytes:
    data = json.dumps(answer).encode()
    return (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data
