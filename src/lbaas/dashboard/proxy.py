"""Hand a browser's API call to the API app, as the signed-in user.

``/dashboard/api/v2/lbaas/loadbalancers?limit=5`` becomes ``/v2/lbaas/loadbalancers?limit=5``
on the very ASGI app that serves the API port, so routing, validation, policy and error bodies
are the API's own. Only a few request headers pass (no cookie, no identity header a browser
could forge); the user's token is added from the dashboard's HttpOnly cookie. Only the public
API trees are reachable this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

API_TREES = ("/v2/", "/v2.0/", "/networking/", "/key-manager/")
PASSED_HEADERS = frozenset({b"host", b"accept", b"content-type", b"content-length"})


def reachable(path: str) -> bool:
    return path.startswith(API_TREES) and "\x00" not in path


async def forward(api: ASGIApp, scope: dict[str, Any], receive: Any, send: Any, path: str,
                  token: str | None) -> None:
    """Run ``path`` (with the request's query string and body) through ``api``."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() in PASSED_HEADERS]
    if token:
        headers.append((b"x-auth-token", token.encode("ascii")))
    inner = {**scope, "path": path, "raw_path": path.encode("utf-8"), "root_path": "",
             "headers": headers}

    async def send_uncached(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            extra = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    await api(inner, receive, send_uncached)
