"""Who may do what: Octavia's policy rule names and default roles.

``RequestContext`` is what authentication produces. ``Policy`` answers
``os_load-balancer_api:<resource>:<action>`` checks with Octavia's defaults: the new defaults
(reader/member/admin) and, when ``enforce_new_defaults`` is off, the deprecated advanced-RBAC
roles too. Under ``noauth`` every caller is admin, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lbaas.api.errors import Forbidden


@dataclass(frozen=True)
class RequestContext:
    project_id: str | None
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False  # noauth, or an admin token
    noauth: bool = False


Check = Callable[[RequestContext, str | None, bool], bool]


def _has(ctx: RequestContext, *roles: str) -> bool:
    return any(r in ctx.roles for r in roles)


def _owner(ctx: RequestContext, target: str | None) -> bool:
    return target is not None and ctx.project_id == target


class Policy:
    """Evaluates Octavia's base rules; an operator file may override per action."""

    def __init__(self, enforce_new_defaults: bool = True,
                 overrides: dict[str, Check] | None = None) -> None:
        self.new_defaults = enforce_new_defaults
        self.overrides = overrides or {}

    # base rules -----------------------------------------------------------------------------
    def admin(self, ctx: RequestContext) -> bool:
        if ctx.is_admin or _has(ctx, "admin"):
            return True
        return not self.new_defaults and _has(ctx, "load-balancer_admin")

    def global_observer(self, ctx: RequestContext) -> bool:
        return _has(ctx, "admin") or (
            not self.new_defaults and _has(ctx, "load-balancer_global_observer"))

    def quota_admin(self, ctx: RequestContext) -> bool:
        return _has(ctx, "admin") or (
            not self.new_defaults and _has(ctx, "load-balancer_quota_admin"))

    def observer_and_owner(self, ctx: RequestContext, target: str | None) -> bool:
        roles = ("reader", "member", "admin") if self.new_defaults else (
            "reader", "member", "admin", "load-balancer_observer", "load-balancer_member")
        return _owner(ctx, target) and _has(ctx, *roles)

    def member_and_owner(self, ctx: RequestContext, target: str | None) -> bool:
        roles = ("member", "admin") if self.new_defaults else (
            "member", "admin", "load-balancer_member")
        return _owner(ctx, target) and _has(ctx, *roles)

    def read(self, ctx: RequestContext, target: str | None) -> bool:
        return (self.observer_and_owner(ctx, target) or self.global_observer(ctx)
                or self.member_and_owner(ctx, target) or self.admin(ctx))

    def read_global(self, ctx: RequestContext) -> bool:
        return self.global_observer(ctx) or self.admin(ctx)

    def write(self, ctx: RequestContext, target: str | None) -> bool:
        return self.member_and_owner(ctx, target) or self.admin(ctx)

    def read_quota(self, ctx: RequestContext, target: str | None) -> bool:
        return self.read(ctx, target) or self.quota_admin(ctx)

    def read_quota_global(self, ctx: RequestContext) -> bool:
        return self.global_observer(ctx) or self.quota_admin(ctx) or self.admin(ctx)

    def write_quota(self, ctx: RequestContext) -> bool:
        return self.quota_admin(ctx) or self.admin(ctx)

    # actions ---------------------------------------------------------------------------------
    def allowed(self, ctx: RequestContext, action: str, target: str | None = None) -> bool:
        override = self.overrides.get(action)
        if override is not None:
            return override(ctx, target, self.admin(ctx))
        resource, _, verb = action.removeprefix("os_load-balancer_api:").partition(":")
        if resource in ("amphora", "flavor-profile", "availability-zone-profile",
                        "provider-flavor", "provider-availability-zone"):
            return self.admin(ctx)
        if resource in ("flavor", "availability-zone"):
            return self.read(ctx, ctx.project_id) if verb.startswith("get") else self.admin(ctx)
        if resource == "provider":
            return self.read(ctx, ctx.project_id)
        if resource == "quota":
            if verb == "get_all-global":
                return self.read_quota_global(ctx)
            if verb in ("get_all", "get_one", "get_defaults"):
                return self.read_quota(ctx, target)
            return self.write_quota(ctx)
        if verb == "get_all-global":
            return self.read_global(ctx)
        if verb in ("get_all", "get_one", "get_stats", "get_status"):
            if resource == "member" and verb == "get_all" and _has(ctx, "service"):
                return True
            return self.read(ctx, target)
        if verb in ("put_failover",):
            return self.admin(ctx)
        return self.write(ctx, target)

    def enforce(self, ctx: RequestContext, action: str, target: str | None = None) -> None:
        if not self.allowed(ctx, action, target):
            raise Forbidden()


def rule(resource: str, verb: str) -> str:
    return f"os_load-balancer_api:{resource}:{verb}"
