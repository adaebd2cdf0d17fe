"""``x-openstack-request-id: req-<uuid>`` on every response, and the id behind its log lines.

As upstream's oslo.middleware RequestId: each request gets a fresh id, returned in the header
(clients print it with their errors: "(HTTP 404) (Request-ID: req-...)"). Key choice: the id is
bound in ``lbaas.logs``' context variable for the rest of the request's task, so every line
logged while it is handled carries it, and ``common.mark_lb_changed`` stores it with the load
balancer, so the controller's lines for the work it started carry it too while queue messages
stay bare load balancer ids. The optional access log writes one line per request, in
oslo.service's wsgi format.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lbaas.logs import ACCESS_LOGGER, REQUEST_ID, new_request_id

HEADER = b"x-openstack-request-id"
Send = Callable[[dict[str, Any]], Awaitable[None]]

access_log = logging.getLogger(ACCESS_LOGGER)


def begin(scope: dict[str, Any], send: Send) -> Send:
    """Bind a new request id for the rest of this request's task; the returned ``send`` adds
    the header to the response and writes the access-log line once the body is sent."""
    rid = new_request_id()
    REQUEST_ID.set(rid)
    header = (HEADER, rid.encode())
    started = time.perf_counter()
    status, length = 0, 0

    async def send_with_id(message: dict[str, Any]) -> None:
        nonlocal status, length
        if message["type"] == "http.response.start":
            status = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), header]}
        elif message["type"] == "http.response.body":
            length += len(message.get("body", b""))
            if not message.get("more_body") and access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, length, time.perf_counter() - started)
        await send(message)

    return send_with_id


def _log_access(scope: dict[str, Any], status: int, length: int, seconds: float) -> None:
    client = (scope.get("client") or ("-",))[0]
    query = scope.get("query_string") or b""
    target = scope.get("path", "") + ("?" + query.decode("latin-1") if query else "")
    access_log.info('%s "%s %s HTTP/%s" status: %d len: %d time: %.4f', client,
                    scope.get("method"), target, scope.get("http_version", "1.1"), status,
                    length, seconds)
