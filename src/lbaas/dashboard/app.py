"""The dashboard's ASGI app: its page and files, sign-in, and the way through to the API.

Routes under ``/dashboard``: ``/`` the page (one HTML document, the scripts route inside it),
``/static/...`` its scripts and styles, ``/session`` who is signed in (GET), sign in (POST, keystone
mode) and sign out (DELETE), ``/api/...`` the public API as the signed-in user (proxy.py).

Every response carries a strict Content-Security-Policy (scripts and styles from this origin
only, nothing inline) and forbids framing. Calls that act for the user (``/session`` and
``/api/``) must carry ``X-Requested-By: lbaas-dashboard``: a page on another site cannot send that
header without a CORS preflight this app never grants, and the token cookie is
``SameSite=Strict`` besides.
"""

from __future__ import annotations

import re
from http.cookies import CookieError, SimpleCookie
from typing import Any

import orjson

from lbaas.api.app import ApiApp
from lbaas.api.http import json_response, read_body, send_response
from lbaas.dashboard import proxy, static
from lbaas.dashboard.identity import Identity, SignInError

PREFIX = "/dashboard"
COOKIE = "lbaas_dashboard_token"
CSRF_HEADER = "x-requested-by"
CSRF_VALUE = "lbaas-dashboard"
NOT_OURS = "Refused: only the dashboard's own page may call this (X-Requested-By, same origin)."
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.=+/]{1,8192}$")

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


def _json(status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None) -> Reply:
    return json_response(status, body, [(b"cache-control", b"no-store"), *(extra or [])])


def _refused(status: int, message: str, field: str | None = None) -> Reply:
    return _json(status, {"faultstring": message, "field": field})


class DashboardApp:
    def __init__(self, api: ApiApp) -> None:
        self.api = api
        settings = api.state.settings
        self.keystone = settings.api.auth_strategy == "keystone"
        self.identity = Identity(settings.keystone) if self.keystone else None
        self.default_project = settings.api.default_project_id
        self.files = static.load()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"][len(PREFIX):]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        if path.startswith("/api/"):
            if not self._same_site(scope, headers):
                await self._send(send, scope, _refused(403, NOT_OURS))
                return
            target = path[len("/api"):]
            if not proxy.reachable(target):
                await self._send(send, scope, _refused(404, "The resource could not be found."))
                return
            await proxy.forward(self.api, scope, receive, send, target,
                                self._token(headers) if self.keystone else None)
            return
        if path == "/session":
            reply = await self._session(scope, receive, headers)
        else:
            reply = self._page(scope, path, headers.get("if-none-match"))
        await self._send(send, scope, reply)

    # --------------------------------------------------------------------------- page & files --
    def _page(self, scope: dict[str, Any], path: str, if_none_match: str | None) -> Reply:
        if scope["method"] not in ("GET", "HEAD"):
            return _refused(405, "The method is not allowed for the requested URL.")
        if path == "":
            query = scope.get("query_string", b"")
            location = PREFIX + "/" + ("?" + query.decode("latin-1") if query else "")
            return 308, [(b"location", location.encode("latin-1")),
                         (b"content-length", b"0")], b""
        if path in ("/", "/index.html"):
            found = self.files.get("index.html")
        elif path.startswith("/static/"):
            found = self.files.get(path.removeprefix("/static/"))
        else:
            found = None
        if found is None:
            return 404, [(b"content-type", b"text/plain; charset=utf-8"),
                         (b"content-length", b"10")], b"Not found\n"
        if if_none_match == found.etag:
            return 304, [(b"etag", found.etag.encode()), (b"cache-control", b"no-cache")], b""
        return 200, [(b"content-type", found.content_type.encode()),
                     (b"content-length", str(len(found.body)).encode()),
                     (b"etag", found.etag.encode()), (b"cache-control", b"no-cache")], found.body

    # -------------------------------------------------------------------------------- session --
    async def _session(self, scope: dict[str, Any], receive: Any,
                       headers: dict[str, str]) -> Reply:
        if not self._same_site(scope, headers):
            return _refused(403, NOT_OURS)
        method = scope["method"]
        if not self.keystone:
            if method in ("GET", "POST"):
                return _json(200, self._noauth_who())
            return 204, [(b"content-length", b"0")], b""
        assert self.identity is not None
        token = self._token(headers)
        try:
            if method == "GET":
                who = await self.identity.who(token) if token else None
                if who is None:
                    return _json(200, {"auth_strategy": "keystone", "authenticated": False},
                                 [self._cookie(scope, "", 0)] if token else [])
                return _json(200, {"auth_strategy": "keystone", "authenticated": True, **who})
            if method == "POST":
                try:
                    form = orjson.loads(await read_body(receive) or b"null")
                except orjson.JSONDecodeError:
                    form = None
                signed = await self.identity.sign_in(form)
                body = {"auth_strategy": "keystone", "authenticated": True, **signed.who}
                return _json(200, body, [self._cookie(scope, signed.token, signed.expires_in)])
            if method == "DELETE":
                if token:
                    await self.identity.revoke(token)
                return 204, [(b"content-length", b"0"), self._cookie(scope, "", 0)], b""
        except SignInError as exc:
            return _refused(exc.status, exc.message, exc.field)
        return _refused(405, "The method is not allowed for the requested URL.")

    def _noauth_who(self) -> dict[str, Any]:
        return {"auth_strategy": "noauth", "authenticated": True, "user": None,
                "project": self.default_project, "project_id": self.default_project,
                "roles": ["admin"], "is_admin": True}

    # ---------------------------------------------------------------------------- primitives --
    @staticmethod
    def _same_site(scope: dict[str, Any], headers: dict[str, str]) -> bool:
        if headers.get(CSRF_HEADER) != CSRF_VALUE:
            return False
        origin = headers.get("origin")
        if origin is None:
            return True
        host = headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")

    @staticmethod
    def _token(headers: dict[str, str]) -> str | None:
        try:
            jar = SimpleCookie(headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        if morsel is None or not TOKEN_SHAPE.match(morsel.value):
            return None
        return morsel.value

    @staticmethod
    def _cookie(scope: dict[str, Any], token: str, max_age: int) -> tuple[bytes, bytes]:
        value = f"{COOKIE}={token}; Path={PREFIX}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        if scope.get("scheme") == "https":
            value += "; Secure"
        return b"set-cookie", value.encode("latin-1")

    @staticmethod
    async def _send(send: Any, scope: dict[str, Any], reply: Reply) -> None:
        status, headers, body = reply
        await send_response(send, status, [*headers, *SECURITY_HEADERS], body,
                            head=scope["method"] == "HEAD")
