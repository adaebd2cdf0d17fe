"""A small ASGI layer: request parsing, a regex router and JSON responses.

Starlette-sized but specialised: Octavia's URL aliases (``/v2.0`` = ``/v2``, optional ``lbaas/``
on collections, a ``.json`` suffix), JSON-only bodies, and WSME error bodies. Handlers are
``async def handler(req: ApiRequest) -> Response``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lbaas.api.errors import ApiError, BadRequest

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    raw: bytes | None = None


@dataclass
class ApiRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body_bytes: bytes
    scheme: str
    host: str
    root_path: str
    path_params: dict[str, str] = field(default_factory=dict)
    context: Any = None
    app: Any = None
    memo: dict[str, Any] = field(default_factory=dict)  # what one request reads once

    def json(self) -> Any:
        if not self.body_bytes.strip():
            raise BadRequest("Invalid input: the request body is empty.")
        try:
            return orjson.loads(self.body_bytes)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"Invalid JSON in the request body: {exc}") from None

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.root_path}"


Handler = Callable[[ApiRequest], Awaitable[Response]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        self._index: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        if pattern not in self._index:
            regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
            methods: dict[str, Handler] = {}
            self._index[pattern] = methods
            self._routes.append((re.compile(regex), methods))
        self._index[pattern][method] = handler

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """Return (handler, params, path_known)."""
        for regex, methods in self._routes:
            m = regex.match(path)
            if m:
                handler = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
                return handler, m.groupdict(), True
        return None, {}, False

    def missing_argument(self, method: str, path: str) -> str | None:
        """The id a collection ``path`` lacks for ``method``: pecan routes ``PUT``/``DELETE``
        on a collection to the item handler, which WSME answers "Missing argument"."""
        for pattern, methods in self._index.items():
            parent, _, last = pattern.rpartition("/")
            if method in ("PUT", "DELETE") and method in methods and last.startswith("{") \
                    and _same_route(parent, path):
                return last[1:-1]
        return None


def _same_route(pattern: str, path: str) -> bool:
    return re.fullmatch(re.sub(r"\{(\w+)\}", "[^/]+", pattern), path) is not None


_LBAAS_COLLECTIONS = (
    "loadbalancers", "listeners", "pools", "healthmonitors", "l7policies", "quotas",
    "providers", "flavors", "flavorprofiles", "availabilityzones", "availabilityzoneprofiles",
)


def normalise_path(path: str) -> str:
    """Map every upstream alias onto one canonical path (``/v2/lbaas/...``)."""
    if path.endswith(".json"):
        path = path[:-5]
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    if path.startswith("/v2.0"):
        path = "/v2" + path[5:]
    if path.startswith("/load-balancer/"):
        path = path[len("/load-balancer"):]
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "v2" and parts[2] in _LBAAS_COLLECTIONS:
        path = "/v2/lbaas/" + "/".join(parts[2:])
    return path


def json_response(status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None) \
        -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    payload = b"" if body is None else orjson.dumps(body)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if extra:
        headers.extend(extra)
    return status, headers, payload


def accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*", "*"):
            return True
    return False


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError("Request body too large", 413)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def build_request(scope: dict[str, Any], body: bytes) -> ApiRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 9876)
        host = f"{server[0]}:{server[1]}"
    return ApiRequest(
        method=scope["method"],
        path=normalise_path(scope["path"]),
        query=query,
        headers=headers,
        body_bytes=body,
        scheme=scope.get("scheme", "http"),
        host=host,
        root_path=scope.get("root_path", ""),
    )


async def send_response(send: Callable[[dict[str, Any]], Awaitable[None]], status: int,
                        headers: list[tuple[bytes, bytes]], payload: bytes,
                        head: bool = False) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


def error_payload(exc: ApiError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return json_response(exc.status, exc.body(), list(getattr(exc, "headers", None) or []))
