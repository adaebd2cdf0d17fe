"""Render a listener's L7 policies and rules as HTTP frontend lines (ACLs, redirects, denies).

Key choice: Octavia promises "the first matching policy by position wins", but HAProxy runs
every ``http-request`` rule before any ``use_backend``, so rendering actions directly (as
upstream does) lets a later REJECT beat an earlier REDIRECT_TO_POOL. Instead each enabled
policy, in position order, claims the transaction (``set-var(txn.lbaas_l7)`` to its id) when
all its rules match and no earlier policy claimed it; actions then test that variable. One ACL
per enabled rule (named by rule id), ``!`` for inverted rules. Policies without enabled rules
never match (as upstream) and are left out. Values are written as single-quoted words after
``--`` (a value such as ``-f /etc/passwd`` cannot become a flag); redirect targets are HAProxy
log-format strings, so ``%`` is doubled; keys go through ``sample_arg``. Keys, values and
regexes must pass ``render.validate`` (PCRE2's own verdict for REGEX), as at the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lbaas.domain import constants as c
from lbaas.domain.spec import L7PolicySpec, L7RuleSpec, ListenerSpec
from lbaas.render import escaping as e
from lbaas.render import validate
from lbaas.render.escaping import RenderError
from lbaas.render.validate import MAX_INT32

VAR = "txn.lbaas_l7"
MATCH = {"REGEX": "-m reg", "STARTS_WITH": "-m beg", "ENDS_WITH": "-m end",
         "CONTAINS": "-m sub", "EQUAL_TO": "-m str"}
# rule type -> (sample fetch, flags); ``{key}`` is the escaped rule key
FETCH = {"HOST_NAME": ("req.hdr(host)", "-i "), "PATH": ("path", ""),
         "FILE_TYPE": ("path_end", ""), "HEADER": ("req.hdr({key})", ""),
         "COOKIE": ("req.cook({key})", ""), "SSL_DN_FIELD": ("ssl_c_s_dn({key})", "")}
KEYED = ("HEADER", "COOKIE", "SSL_DN_FIELD")
# RFC 3986 characters, as the API accepts for redirect_url and redirect_prefix.
_URL = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")


def redirect_pool_ids(listener: ListenerSpec) -> list[str]:
    """Pools this listener's enabled REDIRECT_TO_POOL policies send traffic to."""
    return [e.ident("redirect_pool_id", p.redirect_pool_id) for p in _policies(listener)
            if p.action == "REDIRECT_TO_POOL" and p.redirect_pool_id is not None]


def render_l7_policies(listener: ListenerSpec, pools: Mapping[str, bool]) -> list[str]:
    """Frontend lines (indented) for ``listener``'s policies; ``pools`` maps each rendered
    backend's id to its admin_state_up."""
    acls: list[str] = []
    claims: list[str] = []
    actions: list[str] = []
    backends: list[str] = []
    for policy in _policies(listener):
        with e.blame("l7policy", policy.id):
            _render_policy(policy, pools, acls, claims, actions, backends)
    # http-request rules first: HAProxy warns about any placed after a use_backend.
    return [f"    {line}" for line in (*acls, *claims, *actions, *backends)]


def _render_policy(policy: L7PolicySpec, pools: Mapping[str, bool], acls: list[str],
                   claims: list[str], actions: list[str], backends: list[str]) -> None:
    pid = e.ident("l7policy id", policy.id)
    action = e.choice("l7policy action", policy.action, c.L7_ACTIONS)
    rules = [r for r in e.by_id(policy.rules)
             if e.flag("l7rule admin_state_up", r.admin_state_up)]
    if not rules:
        acls.append(f"# l7policy {pid}: no enabled rules, never matches")
        return
    target = _action(policy, pid, action, pools)
    if target is None:
        pool_id = policy.redirect_pool_id
        acls.append(f"# l7policy {pid}: redirect pool {pool_id} is not enabled or rendered")
        return
    names = []
    for rule in rules:
        with e.blame("l7rule", rule.id):
            rid = e.ident("l7rule id", rule.id)
            acls.append(f"acl {rid} {_condition(rule)}")
            names.append(("!" if e.flag("l7rule invert", rule.invert) else "") + rid)
    claims.append(f"http-request set-var({VAR}) str({pid}) "
                  f"if !{{ var({VAR}) -m found }} {' '.join(names)}")
    chosen = f"{{ var({VAR}) -m str {pid} }}"
    (backends if action == "REDIRECT_TO_POOL" else actions).append(f"{target} if {chosen}")


def _policies(listener: ListenerSpec) -> list[L7PolicySpec]:
    enabled = [p for p in e.by_id(listener.l7policies)
               if e.flag("l7policy admin_state_up", p.admin_state_up)]
    for p in enabled:
        e.integer("l7policy position", p.position, 1, MAX_INT32)
    return sorted(enabled, key=lambda p: (p.position, str(p.id)))


def _action(policy: L7PolicySpec, pid: str, action: str,
            pools: Mapping[str, bool]) -> str | None:
    if action == "REJECT":
        return "http-request deny"
    if action == "REDIRECT_TO_POOL":
        pool_id = e.ident("redirect_pool_id", policy.redirect_pool_id)
        return f"use_backend {pool_id}" if pools.get(pool_id) else None
    field = "redirect_url" if action == "REDIRECT_TO_URL" else "redirect_prefix"
    target = _url(f"l7policy {field}", getattr(policy, field))
    code = policy.redirect_http_code
    code_part = "" if code is None else \
        f" code {e.choice('redirect_http_code', code, c.REDIRECT_HTTP_CODES)}"
    kind = "location" if action == "REDIRECT_TO_URL" else "prefix"
    return f"http-request redirect{code_part} {kind} {e.quote(target.replace('%', '%%'))}"


def _url(field: str, value: Any) -> str:
    if value is None:
        raise RenderError(f"{field}: the action needs it")
    text = _string(field, value)
    if not _URL.match(text):
        raise RenderError(f"{field}: {value!r} is not an absolute RFC 3986 URL")
    return text


def _condition(rule: L7RuleSpec) -> str:
    kind = e.choice("l7rule type", rule.type, c.L7_RULE_TYPES)
    compare = e.choice("l7rule compare_type", rule.compare_type, c.L7_COMPARE_TYPES)
    if kind == "SSL_CONN_HAS_CERT":
        return "ssl_c_used"
    value = _string("l7rule value", rule.value)
    key = _string("l7rule key", rule.key) if kind in KEYED else ""
    why = validate.l7_rule_error(kind, compare, key, value)
    if why is not None:
        raise RenderError(f"l7rule {rule.id}: {why}")
    if kind == "SSL_VERIFY_RESULT":
        return f"ssl_c_verify eq {int(value)}"
    fetch, flags = FETCH[kind]
    # path_end already compares the end; "-m str" would override it (haproxy issue 2567).
    match = "" if kind == "FILE_TYPE" and compare == "EQUAL_TO" else MATCH[compare] + " "
    pattern = validate.l7_pattern(value)
    return f"{e.quote(fetch.format(key=e.sample_arg(key)))} {flags}{match}-- {e.quote(pattern)}"


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RenderError(f"{field}: expected a string, got {type(value).__name__}")
    return value
