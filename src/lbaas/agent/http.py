"""The agent's HTTPS API: a bare ASGI app served by ``lbaas.agent.server`` with two-way TLS.

Key choice: the TLS context requires a client certificate chaining to the controller's CA
(``CERT_REQUIRED``, TLS >= 1.2), so an unauthenticated peer never reaches HTTP at all. Routing is
four fixed paths; no framework is needed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lbaas.agent.certificate import CertificateRefused, ServerCertificate
from lbaas.agent.haproxy import HAProxyError
from lbaas.agent.service import Agent, BundleRejected
from lbaas.wire.agent_api import BUNDLE_PATH, INFO_PATH, STATS_PATH, STATUS_PATH, Bundle, WireError
from lbaas.wire.certificate import CERTIFICATE_PATH, CertificateRequest

log = logging.getLogger("lbaas.agent.http")

MAX_BODY = 32 * 1024 * 1024
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AgentApp:
    def __init__(self, agent: Agent, certificate: ServerCertificate | None = None) -> None:
        self.agent = agent
        self.certificate = certificate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._handle(scope, receive)
            data = json.dumps(body).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.agent.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.agent.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        method, path = scope["method"], scope["path"]
        if path == CERTIFICATE_PATH and self.certificate is not None:
            return await self._certificate(method, receive)
        routes = {INFO_PATH: "GET", STATUS_PATH: "GET", STATS_PATH: "GET", BUNDLE_PATH: "PUT"}
        if path not in routes:
            return 404, {"error": "not found"}
        if method != routes[path]:
            return 405, {"error": f"use {routes[path]}"}
        if path == INFO_PATH:
            return 200, self.agent.info()
        if path == STATUS_PATH:
            return 200, self.agent.status()
        if path == STATS_PATH:
            try:
                return 200, await self.agent.stats()
            except (OSError, TimeoutError, HAProxyError) as exc:
                return 503, {"error": f"haproxy stats unavailable: {exc}"}
        try:
            bundle = Bundle.from_json(json.loads(await _read_body(receive)))
        except (ValueError, WireError) as exc:  # JSONDecodeError is a ValueError
            return 400, {"error": f"invalid bundle: {exc}"}
        try:
            return 200, await self.agent.apply(bundle)
        except BundleRejected as exc:
            log.warning("bundle %s rejected: %s", bundle.digest, exc)
            return 400, {"error": str(exc)}

    async def _certificate(self, method: str, receive: Receive) -> tuple[int, Any]:
        assert self.certificate is not None
        if method == "GET":
            return 200, self.certificate.current()
        if method != "PUT":
            return 405, {"error": "use GET or PUT"}
        try:
            request = CertificateRequest.from_json(json.loads(await _read_body(receive)))
            return 200, self.certificate.replace(request)
        except (ValueError, WireError, CertificateRefused) as exc:
            return 400, {"error": f"certificate refused: {exc}"}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise WireError(f"body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
