"""The ASGI application: routing, authentication, JSON-only rule and error rendering."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lbaas.api import request_id, versions
from lbaas.api.auth import Authenticator
from lbaas.api.errors import ApiError, BadRequest, method_not_allowed, route_not_found
from lbaas.api.http import (
    ApiRequest,
    Response,
    Router,
    accepts_json,
    build_request,
    error_payload,
    json_response,
    read_body,
    send_response,
)
from lbaas.api.offload import Offload
from lbaas.api.state import ApiState

log = logging.getLogger(__name__)

RESOURCE_MODULES = (
    "loadbalancers", "listeners", "pools", "members", "healthmonitors", "l7policies", "l7rules",
    "quotas", "providers", "flavors", "flavorprofiles", "availabilityzones",
    "availabilityzoneprofiles", "amphorae", "networking", "graph", "openapi", "metrics",
    "secrets", "identity",
)

NOT_ACCEPTABLE = {"code": 406, "title": "Not Acceptable",
                  "description": "Only content type application/json is accepted."}

# Paths answered without authentication.
PUBLIC_PATHS = frozenset({
    "/", "/v2", "/healthcheck", "/openapi", "/openapi.json", "/networking", "/networking/v2.0",
    "/key-manager", "/key-manager/v1", "/identity", "/identity/v3", "/identity/v3/auth/tokens",
})
# Barbican's payload GET negotiates the payload's own media type.
ANY_ACCEPT_PREFIXES = ("/healthcheck", "/key-manager/")
DATABASE_UNAVAILABLE = "The database is unavailable, retry later."


def build_router() -> Router:
    router = Router()
    versions.register(router)
    for name in RESOURCE_MODULES:
        module = importlib.import_module(f"lbaas.api.resources.{name}")
        module.register(router)
    return router


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached right now (stopped, restarting,
    connection cut, every pooled connection busy) rather than that a statement was wrong."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError
                  | sa.TimeoutError):
        return True
    return isinstance(exc, sa.DBAPIError) and bool(exc.connection_invalidated)


class ApiApp:
    def __init__(self, state: ApiState, authenticator: Authenticator,
                 on_startup: list[Callable[[], Awaitable[None]]] | None = None,
                 on_shutdown: list[Callable[[], Awaitable[None]]] | None = None) -> None:
        self.state = state
        self.authenticator = authenticator
        self.router = build_router()
        self.on_startup = on_startup or []
        self.on_shutdown = on_shutdown or []
        self.mounts: list[tuple[str, Any]] = []
        self.offload = Offload(state.settings.api.read_threads)

    def mount(self, prefix: str, app: Any) -> None:
        """Serve ``prefix`` and every path under it with another ASGI app (the dashboard)."""
        self.mounts.append((prefix.rstrip("/"), app))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        for prefix, mounted in self.mounts:
            if scope["path"] == prefix or scope["path"].startswith(prefix + "/"):
                await mounted(scope, receive, send)  # the dashboard's API calls come back here
                return
        send = request_id.begin(scope, send)
        head = scope["method"] == "HEAD"
        try:
            body = await read_body(receive)
            req = build_request(scope, body)
            status, headers, payload = await self.handle(req)
        except ApiError as exc:
            status, headers, payload = error_payload(exc)
        except Exception as exc:
            if unreachable(exc):  # it answers again by itself once the database is back
                cause = getattr(exc, "orig", None) or exc
                log.warning("%s %s: database unavailable: %s: %s", scope.get("method"),
                            scope.get("path"), cause.__class__.__name__,
                            str(cause).strip().splitlines()[0][:200] if str(cause).strip()
                            else "")
                status, headers, payload = error_payload(ApiError(DATABASE_UNAVAILABLE, 503))
            else:
                log.exception("unhandled error on %s %s", scope.get("method"),
                              scope.get("path"))
                status, headers, payload = error_payload(ApiError("Internal Server Error",
                                                                  500))
        await send_response(send, status, headers, payload, head=head)

    async def handle(self, req: ApiRequest) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if not req.path.startswith(ANY_ACCEPT_PREFIXES) \
                and not accepts_json(req.headers.get("accept")):
            return json_response(406, NOT_ACCEPTABLE)
        handler, params, known = self.router.match(req.method, req.path)
        if handler is None:
            missing = self.router.missing_argument(req.method, req.path) \
                if known and req.path.startswith("/v2/") else None  # Octavia's routes only
            if missing is not None:
                raise BadRequest(f'Missing argument: "{missing}"')
            if known:
                raise method_not_allowed()
            # pecan: "" from a controller's abort(404), null when no controller matched at all
            raise route_not_found("" if req.path.startswith("/v2/") else None)
        if any("\x00" in v for v in params.values()):  # upstream: "<Label> \x00 not found."
            raise ApiError("The resource could not be found.", 404)
        if any("\x00" in k or "\x00" in v for k, v in req.query):
            raise BadRequest("Invalid input: query parameters cannot contain NUL characters.")
        req.path_params = params
        req.app = self.state
        if req.path not in PUBLIC_PATHS:
            req.context = await self.authenticator.authenticate(req)
        resp: Response = await self.offload.run(req.method, handler, req)
        if resp.raw is not None:
            return resp.status, resp.headers, resp.raw
        return json_response(resp.status, resp.body, resp.headers)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown hook failed")
                self.offload.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
