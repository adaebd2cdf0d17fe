"""Keystone sign-in for the dashboard (``auth_strategy = "keystone"`` only).

The user's name, password and project go to Keystone's ``POST /v3/auth/tokens`` (the password
method, a project-scoped token), at the ``www_authenticate_uri`` the API's keystone settings
name. The dashboard keeps the token only in an HttpOnly cookie and sends it on as the user's
``X-Auth-Token``; who is signed in is asked of Keystone itself (a token may validate itself),
and signing out revokes the token there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from lbaas.settings import KeystoneSettings

TIMEOUT = 10.0
NAME_MAX = 255
PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")  # Keystone's ids: a project given by id


class SignInError(Exception):
    """A refused or impossible sign-in: ``status`` for the response, ``field`` for the form."""

    def __init__(self, message: str, status: int = 401, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class SignedIn:
    token: str
    expires_in: int  # seconds
    who: dict[str, Any]


def keystone_v3(uri: str) -> str:
    base = uri.rstrip("/")
    return base if base.endswith("/v3") else base + "/v3"


def describe(token_body: dict[str, Any]) -> dict[str, Any]:
    """The public part of a Keystone token: user, project and roles."""
    token = token_body.get("token", {})
    roles = sorted(str(r.get("name", "")).lower() for r in token.get("roles", []))
    user = token.get("user", {})
    project = token.get("project", {})
    return {"user": user.get("name"), "user_id": user.get("id"),
            "project": project.get("name"), "project_id": project.get("id"),
            "roles": roles, "is_admin": "admin" in roles,
            "expires_at": token.get("expires_at")}


def _seconds_left(expires_at: str | None) -> int:
    if not expires_at:
        return 3600
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return 3600
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - datetime.now(UTC)).total_seconds()))


def check_form(form: Any) -> tuple[str, str, str, str]:
    if not isinstance(form, dict):
        raise SignInError("Send the user name, password and project.", 400)
    values: list[str] = []
    for field in ("username", "password", "project", "domain"):
        value = form.get(field)
        if field == "domain" and not value:
            value = "Default"
        if not isinstance(value, str) or not value.strip():
            raise SignInError("This field is required.", 400, field)
        if len(value) > NAME_MAX:
            raise SignInError(f"At most {NAME_MAX} characters.", 400, field)
        values.append(value if field == "password" else value.strip())
    return values[0], values[1], values[2], values[3]


class Identity:
    def __init__(self, settings: KeystoneSettings) -> None:
        self.base = keystone_v3(settings.www_authenticate_uri)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=TIMEOUT, trust_env=False)

    async def sign_in(self, form: Any) -> SignedIn:
        username, password, project, domain = check_form(form)
        scope = {"id": project} if PROJECT_ID.match(project) \
            else {"name": project, "domain": {"name": domain}}
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": domain}, "password": password}}},
            "scope": {"project": scope}}}
        try:
            async with self._client() as client:
                resp = await client.post("/auth/tokens", json=body)
        except httpx.HTTPError:
            raise SignInError("Keystone cannot be reached.", 503) from None
        if resp.status_code == 201 and resp.headers.get("x-subject-token"):
            who = describe(resp.json())
            return SignedIn(resp.headers["x-subject-token"], _seconds_left(who["expires_at"]),
                            who)
        if resp.status_code in (400, 401, 403, 404):
            raise SignInError("The user name, password, project or domain is not right.")
        raise SignInError(f"Keystone answered {resp.status_code}.", 502)

    async def who(self, token: str) -> dict[str, Any] | None:
        """The token's user, project and roles; None when Keystone no longer accepts it."""
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        try:
            async with self._client() as client:
                resp = await client.get("/auth/tokens", headers=headers)
        except httpx.HTTPError:
            raise SignInError("Keystone cannot be reached.", 503) from None
        if resp.status_code == 200:
            return describe(resp.json())
        if resp.status_code in (401, 403, 404):
            return None
        raise SignInError(f"Keystone answered {resp.status_code}.", 502)

    async def revoke(self, token: str) -> None:
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        try:
            async with self._client() as client:
                await client.delete("/auth/tokens", headers=headers)
        except httpx.HTTPError:
            pass  # the cookie goes anyway; the token then simply expires
