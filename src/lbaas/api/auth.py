"""Authentication strategies turning request headers into a ``RequestContext``.

``noauth`` mirrors upstream: every caller is admin and the project comes from the body, else
``X-Project-Id``/``X-Tenant-Id``, else the configured default project.
"""

from __future__ import annotations

from typing import Protocol

from lbaas.api.http import ApiRequest
from lbaas.api.policy import RequestContext


class Authenticator(Protocol):
    async def authenticate(self, req: ApiRequest) -> RequestContext: ...


class NoAuth:
    def __init__(self, default_project_id: str | None) -> None:
        self.default_project_id = default_project_id

    async def authenticate(self, req: ApiRequest) -> RequestContext:
        project = (req.headers.get("x-project-id") or req.headers.get("x-tenant-id")
                   or self.default_project_id)
        roles = frozenset(r.strip() for r in req.headers.get("x-roles", "admin").split(",")
                          if r.strip())
        return RequestContext(project_id=project, user_id=req.headers.get("x-user-id"),
                              roles=roles, is_admin=True, noauth=True)
