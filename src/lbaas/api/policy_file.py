"""Operator policy files: oslo.policy rules layered over Octavia's defaults.

``load_policy_file`` builds a real ``oslo_policy.policy.Enforcer`` (private oslo.config object,
so the host's ``sys.argv`` and config files are never read) with Octavia's rules registered as
defaults: its base rules (``load-balancer:read``, ``context_is_admin``, ...) with the advanced-RBAC
check strings as ``DeprecatedRule``s, so oslo.policy ORs them in exactly when
``enforce_new_defaults`` is off, and one rule per ``os_load-balancer_api:*`` action. The operator's
YAML or JSON file then overrides any of them, as in upstream's ``policy.yaml``.

Once a file is configured every action is decided by that enforcer (the returned ``Policy``
carries one override per action), so overriding a base rule such as ``load-balancer:read``
reaches every action built on it, and edits to the file are picked up without a restart, as
oslo.policy reloads a changed file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy as oslo

from lbaas.api.policy import Check, Policy, RequestContext, rule

READ = "rule:load-balancer:read"
READ_GLOBAL = "rule:load-balancer:read-global"
WRITE = "rule:load-balancer:write"
ADMIN = "rule:load-balancer:admin"
READ_QUOTA = "rule:load-balancer:read-quota"
READ_QUOTA_GLOBAL = "rule:load-balancer:read-quota-global"
WRITE_QUOTA = "rule:load-balancer:write-quota"

DEPRECATED_REASON = ("The Octavia advanced RBAC roles are deprecated in favour of Keystone's "
                     "default roles (reader, member, admin).")

# (name, check under the new defaults, deprecated advanced-RBAC check or None)
BASE_RULES: tuple[tuple[str, str, str | None], ...] = (
    ("context_is_admin", "role:admin", "role:admin or role:load-balancer_admin"),
    ("load-balancer:owner", "project_id:%(project_id)s", None),
    ("project-member", "role:member and project_id:%(project_id)s", None),
    ("project-reader", "role:reader and project_id:%(project_id)s", None),
    ("service", "role:service", None),
    ("load-balancer:admin", "is_admin:True or role:admin",
     "is_admin:True or role:admin or role:load-balancer_admin"),
    ("load-balancer:global_observer", "role:admin", "role:load-balancer_global_observer"),
    ("load-balancer:member_and_owner", "rule:project-member",
     "role:load-balancer_member and rule:load-balancer:owner"),
    ("load-balancer:observer_and_owner", "rule:project-reader",
     "role:load-balancer_observer and rule:load-balancer:owner"),
    ("load-balancer:quota-admin", "role:admin", "role:load-balancer_quota_admin"),
    ("load-balancer:read",
     "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
     "rule:load-balancer:member_and_owner or rule:load-balancer:admin", None),
    ("load-balancer:read-global",
     "rule:load-balancer:global_observer or rule:load-balancer:admin", None),
    ("load-balancer:write", "rule:load-balancer:member_and_owner or rule:load-balancer:admin",
     None),
    ("load-balancer:read-quota",
     "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
     "rule:load-balancer:member_and_owner or rule:load-balancer:quota-admin or "
     "rule:load-balancer:admin", None),
    ("load-balancer:read-quota-global",
     "rule:load-balancer:global_observer or rule:load-balancer:quota-admin or "
     "rule:load-balancer:admin", None),
    ("load-balancer:write-quota", "rule:load-balancer:quota-admin or rule:load-balancer:admin",
     None),
)

_LB_OBJECTS = ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
               "l7rule")
_CRUD = ("get_all", "get_all-global", "get_one", "post", "put", "delete")


def _action_checks() -> Iterator[tuple[str, str]]:
    for resource in _LB_OBJECTS:
        for verb in _CRUD:
            check = {"get_all": READ, "get_one": READ, "get_all-global": READ_GLOBAL}.get(
                verb, WRITE)
            if resource == "member" and verb == "get_all":
                check = f"{READ} or rule:service"
            yield rule(resource, verb), check
    for verb in ("get_stats", "get_status"):
        yield rule("loadbalancer", verb), READ
    yield rule("listener", "get_stats"), READ
    yield rule("loadbalancer", "put_failover"), ADMIN
    yield rule("loadbalancer", "post:vip_sg_ids"), WRITE
    yield rule("loadbalancer", "put:vip_sg_ids"), WRITE
    for verb in ("get_all", "get_one", "delete", "put_config", "put_failover", "get_stats"):
        yield rule("amphora", verb), ADMIN
    yield rule("provider", "get_all"), READ
    yield rule("provider-flavor", "get_all"), ADMIN
    yield rule("provider-availability-zone", "get_all"), ADMIN
    for resource in ("flavor", "availability-zone"):
        yield rule(resource, "get_all"), READ
        yield rule(resource, "get_one"), READ
        for verb in ("post", "put", "delete"):
            yield rule(resource, verb), ADMIN
    for resource in ("flavor-profile", "availability-zone-profile"):
        for verb in ("get_all", "get_one", "post", "put", "delete"):
            yield rule(resource, verb), ADMIN
    yield rule("quota", "get_all"), READ_QUOTA
    yield rule("quota", "get_all-global"), READ_QUOTA_GLOBAL
    yield rule("quota", "get_one"), READ_QUOTA
    yield rule("quota", "get_defaults"), READ_QUOTA
    yield rule("quota", "put"), WRITE_QUOTA
    yield rule("quota", "delete"), WRITE_QUOTA


ACTION_RULES: dict[str, str] = dict(_action_checks())


def default_rules() -> list[oslo.RuleDefault]:
    rules: list[oslo.RuleDefault] = []
    for name, check, deprecated in BASE_RULES:
        old = None
        if deprecated is not None:
            old = oslo.DeprecatedRule(name=name, check_str=deprecated,
                                      deprecated_reason=DEPRECATED_REASON,
                                      deprecated_since="W")
        rules.append(oslo.RuleDefault(name, check, deprecated_rule=old))
    rules.extend(oslo.RuleDefault(name, check) for name, check in ACTION_RULES.items())
    return rules


def build_enforcer(path: str | Path | None, enforce_new_defaults: bool) -> oslo.Enforcer:
    conf = cfg.ConfigOpts()
    conf(args=[], project="lbaas", default_config_files=[], default_config_dirs=[])
    enforcer = oslo.Enforcer(conf, policy_file=str(Path(path).resolve()) if path else None,
                             use_conf=path is not None)
    conf.set_override("enforce_new_defaults", enforce_new_defaults, group="oslo_policy")
    conf.set_override("policy_dirs", [], group="oslo_policy")
    enforcer.suppress_deprecation_warnings = True
    enforcer.register_defaults(default_rules())
    enforcer.load_rules()
    # Fail at start-up, not on a request, when a rule names an undefined rule or loops.
    enforcer.check_rules(raise_on_violation=True)
    return enforcer


def credentials(enforcer: oslo.Enforcer, ctx: RequestContext) -> dict[str, object]:
    creds: dict[str, object] = {"roles": sorted(ctx.roles), "project_id": ctx.project_id,
                                "user_id": ctx.user_id, "is_admin": False}
    # Upstream: is_admin = context_is_admin (file-overridable) or auth_strategy == noauth.
    creds["is_admin"] = ctx.noauth or enforcer.enforce("context_is_admin", {}, creds)
    return creds


# Objects without an owner: upstream checks them against the caller's own project.
_UNOWNED = ("provider", "flavor", "availability-zone")


def make_check(enforcer: oslo.Enforcer, action: str) -> Check:
    unowned = action.removeprefix("os_load-balancer_api:").partition(":")[0] in _UNOWNED

    def check(ctx: RequestContext, target_project: str | None, _is_admin: bool) -> bool:
        # Upstream passes the caller's own project for collections and unowned objects.
        project = ctx.project_id if unowned or target_project is None else target_project
        target = {"project_id": project} if project is not None else {}
        return bool(enforcer.enforce(action, target, credentials(enforcer, ctx)))

    return check


class FilePolicy(Policy):
    """A ``Policy`` whose every action is decided by ``enforcer``."""

    def __init__(self, enforcer: oslo.Enforcer, enforce_new_defaults: bool) -> None:
        actions = set(ACTION_RULES)
        actions.update(name for name in enforcer.file_rules
                       if name.startswith("os_load-balancer_api:"))
        super().__init__(enforce_new_defaults=enforce_new_defaults,
                         overrides={a: make_check(enforcer, a) for a in sorted(actions)})
        self.enforcer = enforcer


def load_policy_file(path: str | Path, enforce_new_defaults: bool) -> Policy:
    """A ``Policy`` with Octavia's defaults overridden by the operator's file at ``path``."""
    if not Path(path).is_file():  # oslo.policy would silently run on the defaults alone
        raise FileNotFoundError(f"policy file {path} not found")
    return FilePolicy(build_enforcer(path, enforce_new_defaults), enforce_new_defaults)
