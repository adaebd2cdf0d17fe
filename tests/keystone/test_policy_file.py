"""The operator policy file: oslo.policy with Octavia's defaults, then the file's overrides.

No Keystone needed: contexts are built by hand the way ``KeystoneAuth`` builds them (with
Keystone's implied roles already expanded).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from oslo_policy import policy as oslo

from lbaas.api.policy import Policy, RequestContext, rule
from lbaas.api.policy_file import ACTION_RULES, load_policy_file

IMPLIED = {"admin": {"admin", "member", "reader"}, "member": {"member", "reader"}}
ROLES = ("reader", "member", "admin", "load-balancer_observer", "load-balancer_global_observer",
         "load-balancer_member", "load-balancer_quota_admin", "load-balancer_admin", "service",
         "unrelated")


def ctx(role: str, project: str = "A") -> RequestContext:
    roles = frozenset(IMPLIED.get(role, {role}))
    return RequestContext(project_id=project, user_id="u", roles=roles,
                          is_admin="admin" in roles)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("new_defaults", [True, False])
def test_an_empty_file_keeps_octavias_defaults(tmp_path: Path, new_defaults: bool) -> None:
    """oslo.policy with Octavia's registered defaults decides exactly like the built-in rules."""
    built_in = Policy(enforce_new_defaults=new_defaults)
    from_file = load_policy_file(write(tmp_path, "{}\n"), new_defaults)
    differences = [
        (role, action, target)
        for role in ROLES for action in ACTION_RULES for target in ("A", "B")
        if built_in.allowed(ctx(role), action, target)
        != from_file.allowed(ctx(role), action, target)]
    assert differences == []
    # And the table is not trivially permissive or restrictive.
    assert from_file.allowed(ctx("member"), rule("loadbalancer", "put"), "A")
    assert not from_file.allowed(ctx("member"), rule("loadbalancer", "put"), "B")


def test_action_override_changes_only_that_action(tmp_path: Path) -> None:
    policy = load_policy_file(write(tmp_path, (
        '"os_load-balancer_api:loadbalancer:delete": "role:admin"\n'
        '"os_load-balancer_api:loadbalancer:put_failover": "rule:load-balancer:write"\n')),
        True)
    member = ctx("member")
    assert not policy.allowed(member, rule("loadbalancer", "delete"), "A")
    assert policy.allowed(member, rule("loadbalancer", "put_failover"), "A")
    assert not policy.allowed(member, rule("loadbalancer", "put_failover"), "B")
    assert policy.allowed(member, rule("loadbalancer", "put"), "A")
    assert policy.allowed(ctx("admin"), rule("loadbalancer", "delete"), "B")


def test_base_rule_override_reaches_every_action_built_on_it(tmp_path: Path) -> None:
    policy = load_policy_file(write(tmp_path, '{"load-balancer:member_and_owner": '
                                              '"role:member and rule:load-balancer:owner '
                                              'and not role:suspended"}', "policy.json"), True)
    suspended = RequestContext(project_id="A", roles=frozenset({"member", "reader",
                                                                "suspended"}))
    for resource in ("loadbalancer", "listener", "pool", "member", "l7rule"):
        assert not policy.allowed(suspended, rule(resource, "post"), "A")
        assert policy.allowed(suspended, rule(resource, "get_one"), "A")  # reader still reads
        assert policy.allowed(ctx("member"), rule(resource, "post"), "A")


def test_context_is_admin_and_noauth(tmp_path: Path) -> None:
    policy = load_policy_file(write(tmp_path, '"context_is_admin": "role:cloud_admin"\n'
                                              '"load-balancer:admin": "is_admin:True"\n'), True)
    cloud_admin = RequestContext(project_id="A", roles=frozenset({"cloud_admin"}))
    assert policy.allowed(cloud_admin, rule("amphora", "get_all"))
    assert not policy.allowed(ctx("admin"), rule("amphora", "get_all"))
    noauth = RequestContext(project_id="A", is_admin=True, noauth=True)
    assert policy.allowed(noauth, rule("amphora", "get_all"))


def test_deprecated_roles_follow_enforce_new_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n")
    lb_admin = ctx("load-balancer_admin")
    assert load_policy_file(path, False).allowed(lb_admin, rule("loadbalancer", "put"), "B")
    assert not load_policy_file(path, True).allowed(lb_admin, rule("loadbalancer", "put"), "B")
    # An operator who redefines the rule gets exactly their rule, whatever the switch.
    custom = write(tmp_path, '"load-balancer:global_observer": "role:auditor"\n', "p2.yaml")
    glob = ctx("load-balancer_global_observer")
    auditor = RequestContext(project_id="A", roles=frozenset({"auditor"}))
    for new_defaults in (True, False):
        policy = load_policy_file(custom, new_defaults)
        assert policy.allowed(auditor, rule("loadbalancer", "get_all-global"))
        assert not policy.allowed(glob, rule("loadbalancer", "get_all-global"))


def test_a_changed_file_is_reloaded(tmp_path: Path) -> None:
    path = write(tmp_path, '"os_load-balancer_api:loadbalancer:post": "!"\n')
    policy = load_policy_file(path, True)
    assert not policy.allowed(ctx("member"), rule("loadbalancer", "post"), "A")
    Path(path).write_text('"os_load-balancer_api:loadbalancer:post": "@"\n')
    later = time.time() + 5
    os.utime(path, (later, later))
    assert policy.allowed(ctx("reader"), rule("loadbalancer", "post"), "B")


def test_bad_files_fail_at_load(tmp_path: Path) -> None:
    with pytest.raises(oslo.InvalidDefinitionError):
        load_policy_file(write(tmp_path, '"load-balancer:read": "rule:no-such-rule"\n'), True)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_policy_file(str(tmp_path / "missing.yaml"), True)
