"""Keystone authentication: keystonemiddleware's ``auth_token`` run beside our ASGI app.

Upstream Octavia wraps its WSGI app in ``keystonemiddleware.auth_token.AuthProtocol``. Our API is
ASGI, so instead of wrapping it we keep one ``AuthProtocol`` around a tiny WSGI app that only
records the environ it receives, and call it (in a worker thread, it blocks on HTTP) with a
minimal environ that carries nothing from the request but its tokens. The identity headers the
middleware sets (``X-Identity-Status``, ``X-Project-Id``, ``X-User-Id``, ``X-Roles``) become the
``RequestContext``; headers of the same names sent by the client are never read. A rejected token
gives the middleware's own 401 body, as upstream.

Validated tokens are cached by keystonemiddleware itself, memcache-less: its ``cache`` option
names an environ key under which we hand it one thread-safe in-process cache shared by all
requests (its built-in fallback keeps one dict per pooled client, so threads would miss).
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from keystoneauth1 import loading
from keystonemiddleware import auth_token
from oslo_config import cfg

from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest
from lbaas.api.policy import RequestContext
from lbaas.settings import KeystoneSettings

log = logging.getLogger(__name__)

GROUP = "keystone_authtoken"
CACHE_ENV_KEY = "lbaas.token_cache"
RESULT_ENV_KEY = "lbaas.identity"

# Optional settings read with these defaults until KeystoneSettings grows them.
EXTRA_DEFAULTS: dict[str, Any] = {
    "interface": "internal",  # keystonemiddleware's default endpoint interface
    "region_name": None,
    "cafile": None,
    "insecure": False,
    "token_cache_time": 300,
    "http_connect_timeout": None,
    "service_token_roles_required": True,
}

UNAUTHORIZED_BODY = {"error": {"code": 401, "title": "Unauthorized",
                               "message": "The request you have made requires authentication."}}


class Unauthorized(ApiError):
    """401 with keystonemiddleware's body (not WSME's): that is what upstream clients see."""

    status = 401

    def __init__(self, body: dict[str, Any] | None = None,
                 www_authenticate: str | None = None) -> None:
        body = body or UNAUTHORIZED_BODY
        super().__init__(str(body.get("error", {}).get("message", "Unauthorized")))
        self._body = body
        self.headers: list[tuple[bytes, bytes]] = []
        if www_authenticate:
            self.headers.append((b"www-authenticate", www_authenticate.encode("latin-1")))

    def body(self) -> dict[str, Any]:
        return self._body


class MemoryTokenCache:
    """The memcache subset keystonemiddleware uses (get/set with a TTL), shared by threads."""

    def __init__(self, max_entries: int = 10000) -> None:
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= _now():
                del self._data[key]
                return None
            return value

    def set(self, key: str, value: Any, time: float = 0, **_: Any) -> bool:
        expires = float("inf") if not time else _now() + time
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return True

    def size(self) -> int:
        # deliberately not __len__: keystonemiddleware tests the object for truth
        return len(self._data)


def _now() -> float:
    return time.monotonic()


def _setting(settings: KeystoneSettings, name: str) -> Any:
    return getattr(settings, name, EXTRA_DEFAULTS[name])


def build_conf(settings: KeystoneSettings) -> cfg.ConfigOpts:
    """A private oslo.config object with ``[keystone_authtoken]`` filled from our settings.

    Private so that neither ``sys.argv`` nor config files of the host process are parsed and the
    global ``cfg.CONF`` stays untouched.
    """
    conf = cfg.ConfigOpts()
    conf(args=[], project="lbaas", default_config_files=[], default_config_dirs=[])
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    password = loading.get_plugin_loader("password")
    conf.register_opts(loading.get_auth_plugin_conf_options(password), group=GROUP)
    values: dict[str, Any] = {
        "www_authenticate_uri": settings.www_authenticate_uri,
        "auth_type": "password",
        "auth_url": settings.auth_url,
        "username": settings.username,
        "password": settings.password,
        "project_name": settings.project_name,
        "user_domain_name": settings.user_domain_name,
        "project_domain_name": settings.project_domain_name,
        "delay_auth_decision": False,
        "include_service_catalog": False,
        "cache": CACHE_ENV_KEY,
    }
    for name in EXTRA_DEFAULTS:
        values[name] = _setting(settings, name)
    for name, value in values.items():
        if value is not None:
            conf.set_override(name, value, group=GROUP)
    return conf


def _capture(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app behind the middleware: keep the identity headers it set."""
    environ[RESULT_ENV_KEY].update(
        {k: v for k, v in environ.items() if k.startswith("HTTP_X_")})
    start_response("204 No Content", [])
    return [b""]


class KeystoneAuth:
    """``Authenticator`` for ``auth_strategy = "keystone"``."""

    def __init__(self, settings: KeystoneSettings) -> None:
        self.settings = settings
        self.cache = MemoryTokenCache()
        self.middleware = auth_token.AuthProtocol(
            _capture, {"oslo_config_config": build_conf(settings)})

    async def authenticate(self, req: ApiRequest) -> RequestContext:
        identity = await asyncio.to_thread(
            self.validate, req.headers.get("x-auth-token"), req.headers.get("x-service-token"))
        return self.context(identity)

    def validate(self, token: str | None, service_token: str | None = None) -> dict[str, str]:
        """Run the middleware on a request carrying only ``token``; return its X-* headers."""
        identity: dict[str, str] = {}
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "",
            "SERVER_NAME": "lbaas", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            CACHE_ENV_KEY: self.cache, RESULT_ENV_KEY: identity,
        }
        if token:
            environ["HTTP_X_AUTH_TOKEN"] = token
        if service_token:
            environ["HTTP_X_SERVICE_TOKEN"] = service_token
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            started.append((status, headers))
            return lambda _data: None

        result = self.middleware(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started[-1]
        code = int(status.split()[0])
        if code == 204 and identity.get("HTTP_X_IDENTITY_STATUS") == "Confirmed":
            return identity
        if code in (204, 401):
            raise Unauthorized(_json(body), dict(headers).get("WWW-Authenticate"))
        if code == 503:
            raise ApiError("The Keystone service is temporarily unavailable.", 503)
        log.error("keystonemiddleware answered %s: %s", status, body[:500])
        raise ApiError("Internal Server Error", 500)

    @staticmethod
    def context(identity: dict[str, str]) -> RequestContext:
        roles = frozenset(r.strip().lower() for r in identity.get("HTTP_X_ROLES", "").split(",")
                          if r.strip())
        return RequestContext(
            project_id=identity.get("HTTP_X_PROJECT_ID") or None,
            user_id=identity.get("HTTP_X_USER_ID") or None,
            roles=roles,
            is_admin="admin" in roles,  # upstream's context_is_admin default (role:admin)
        )


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
