"""No value in the aggregate can add, end or comment out a line of haproxy.cfg.

Every field that reaches the file gets hostile payloads. The renderer must either raise
RenderError, or produce a config with exactly the same shape (the directive words of each line,
read with HAProxy's own quoting rules) as the clean config: a payload may only change the
content of a quoted word. Configs that were accepted are also checked with ``haproxy -c``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from render_aggregates import clone, http_site, l7policy, spec

from lbaas.render import RenderError, RenderOptions, render_haproxy_config

EVIL = [
    "x\n    server evil 1.2.3.4:80",
    "x\r\n    server evil 1.2.3.4:80",
    "x\rserver evil 1.2.3.4:80",
    "x\x00server evil",
    "x\u2028server evil 1.2.3.4:80",
    "/ok' server evil 1.2.3.4:80 '",
    "/ok #\n    server evil 1.2.3.4:80",
    "/a'b#c$d$(HOME)%41",
    "/ok\\\n    server evil 1.2.3.4:80",
    "200\n",
    "sess'#$id",
    "a b",
    "10.0.0.1:80 backup\n",
    "10.0.0.1/8 }\n    server evil 1.2.3.4:80",
    "ee000000-0000-4000-8000-000000000001 10.0.0.1:1\n    server evil",
    "true\n    server evil 1.2.3.4:80",
    "X-Real-IP\n    server evil",
    "-f /etc/passwd",
    "%[src] %{+Q}o",
]

Setter = Callable[[dict[str, Any], Any], None]


def _listener(lb: dict[str, Any]) -> dict[str, Any]:
    return lb["listeners"][0]


def _pool(lb: dict[str, Any]) -> dict[str, Any]:
    return lb["pools"][0]


def _member(lb: dict[str, Any]) -> dict[str, Any]:
    return lb["pools"][0]["members"][0]


def _hm(lb: dict[str, Any]) -> dict[str, Any]:
    return lb["pools"][0]["healthmonitor"]


def _set(getter: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Setter:
    def apply(lb: dict[str, Any], value: Any) -> None:
        getter(lb)[key] = value
    return apply


FIELDS: dict[str, Setter] = {
    "lb.id": _set(lambda lb: lb, "id"),
    "lb.vip_address": _set(lambda lb: lb, "vip_address"),
    "lb.additional_vips": lambda lb, v: lb.update(additional_vips=[{"ip_address": v}]),
    **{f"listener.{k}": _set(_listener, k) for k in (
        "id", "protocol", "protocol_port", "connection_limit", "default_pool_id",
        "timeout_client_data", "timeout_member_connect", "timeout_member_data",
        "timeout_tcp_inspect", "insert_headers", "allowed_cidrs")},
    "listener.allowed_cidrs[0]": lambda lb, v: _listener(lb).update(allowed_cidrs=[v]),
    "listener.insert_headers key": lambda lb, v: _listener(lb).update(insert_headers={v: "true"}),
    "listener.insert_headers value":
        lambda lb, v: _listener(lb).update(insert_headers={"X-Real-IP": v}),
    "l7policy.id": lambda lb, v: _listener(lb).update(l7policies=[l7policy(1, 1, id=v)]),
    **{f"pool.{k}": _set(_pool, k) for k in ("id", "protocol", "lb_algorithm")},
    "pool.session_persistence.type":
        lambda lb, v: _pool(lb).update(session_persistence={"type": v}),
    "pool.session_persistence.cookie_name": lambda lb, v: _pool(lb).update(
        session_persistence={"type": "APP_COOKIE", "cookie_name": v}),
    "pool.session_persistence": _set(_pool, "session_persistence"),
    **{f"member.{k}": _set(_member, k) for k in (
        "id", "address", "protocol_port", "weight", "monitor_address", "monitor_port",
        "admin_state_up", "backup")},
    **{f"healthmonitor.{k}": _set(_hm, k) for k in (
        "type", "http_method", "url_path", "expected_codes", "domain_name", "http_version",
        "delay", "timeout", "max_retries", "max_retries_down", "admin_state_up")},
}


# L7 fields: field -> (policy overrides, rule overrides, attribute the payload goes to, the
# legal value the clean config uses). The payload lands in a policy of the matching shape.
L7_FIELDS: dict[str, tuple[dict[str, Any], dict[str, Any], str, Any]] = {
    "l7policy.redirect_url": ({"action": "REDIRECT_TO_URL"}, {}, "redirect_url",
                              "https://example.com/"),
    "l7policy.redirect_prefix": ({"action": "REDIRECT_PREFIX"}, {}, "redirect_prefix",
                                 "https://example.com"),
    "l7policy.redirect_http_code": ({"action": "REDIRECT_TO_URL",
                                     "redirect_url": "https://example.com/"}, {},
                                    "redirect_http_code", 302),
    "l7policy.redirect_pool_id": ({"action": "REDIRECT_TO_POOL"}, {}, "redirect_pool_id",
                                  http_site()["pools"][0]["id"]),
    "l7policy.action": ({}, {}, "action", "REJECT"),
    "l7policy.position": ({}, {}, "position", 1),
    "l7policy.admin_state_up": ({}, {}, "admin_state_up", True),
    "l7rule.id": ({}, {}, "rule:id", l7policy(1, 1)["rules"][0]["id"]),
    "l7rule.type": ({}, {}, "rule:type", "PATH"),
    "l7rule.compare_type": ({}, {}, "rule:compare_type", "EQUAL_TO"),
    "l7rule.invert": ({}, {}, "rule:invert", True),
    "l7rule.admin_state_up": ({}, {}, "rule:admin_state_up", True),
    "l7rule.value path": ({}, {}, "rule:value", "/admin"),
    "l7rule.value regex": ({}, {"compare_type": "REGEX"}, "rule:value", "^/a"),
    "l7rule.value file type": ({}, {"type": "FILE_TYPE", "compare_type": "EQUAL_TO"},
                               "rule:value", "js"),
    "l7rule.value host": ({}, {"type": "HOST_NAME"}, "rule:value", "example.com"),
    "l7rule.value verify result": ({}, {"type": "SSL_VERIFY_RESULT",
                                        "compare_type": "EQUAL_TO"}, "rule:value", "0"),
    "l7rule.key header": ({}, {"type": "HEADER", "value": "x"}, "rule:key", "X-Test"),
    "l7rule.value header": ({}, {"type": "HEADER", "key": "X-Test"}, "rule:value", "x"),
    "l7rule.key cookie": ({}, {"type": "COOKIE", "value": "x"}, "rule:key", "sid"),
    "l7rule.value cookie": ({}, {"type": "COOKIE", "key": "sid"}, "rule:value", "x"),
    "l7rule.key dn": ({}, {"type": "SSL_DN_FIELD", "value": "x"}, "rule:key", "OU"),
    "l7rule.value dn": ({}, {"type": "SSL_DN_FIELD", "key": "OU"}, "rule:value", "x"),
}


def _l7_setter(policy_over: dict[str, Any], rule_over: dict[str, Any], attr: str) -> Setter:
    def apply(lb: dict[str, Any], value: Any) -> None:
        pol = l7policy(1, 1, **policy_over)
        pol["rules"][0].update(rule_over)
        if attr.startswith("rule:"):
            pol["rules"][0][attr[5:]] = value
        else:
            pol[attr] = value
        _listener(lb)["l7policies"] = [pol]
    return apply


FIELDS.update({k: _l7_setter(p, r, a) for k, (p, r, a, _) in L7_FIELDS.items()})


def _words(line: str) -> list[str]:
    """Split one line as HAProxy 2.6 does: quotes, backslash escapes, '#' comments."""
    words: list[str] = []
    current: list[str] | None = None
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
            else:
                current.append(ch)  # type: ignore[union-attr]
        elif ch in "'\"":
            quote, current = ch, current if current is not None else []
        elif ch == "\\" and i + 1 < len(line):
            current = (current or []) + [line[i + 1]]
            i += 1
        elif ch.isspace():
            if current is not None:
                words.append("".join(current))
            current = None
        elif ch == "#":
            break
        else:
            current = (current or []) + [ch]
        i += 1
    if current is not None:
        words.append("".join(current))
    return words


def shape(config: str) -> list[tuple[str, ...]]:
    """Per line: the directive words (the first two, or one for a server's options)."""
    out = []
    for line in config.splitlines():
        words = _words(line)
        if words:
            out.append(tuple(words[:1] if words[0] in ("server", "bind") else words[:2]))
    return out


BASE = http_site()
# What the clean config uses for fields whose legal values change the config's shape.
BENIGN = {
    "l7policy.id": l7policy(1, 1)["id"],
    "pool.session_persistence.cookie_name": "sid",
    **{k: v[3] for k, v in L7_FIELDS.items()},
}
OPTIONS = RenderOptions()


def _render_with(field: str, payload: Any) -> str | None:
    """The config with ``payload`` in ``field``, or None when the renderer refuses it."""
    lb = clone(BASE)
    FIELDS[field](lb, payload)
    try:
        return render_haproxy_config(spec(lb), OPTIONS)
    except RenderError:
        return None


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("payload", EVIL, ids=[f"p{i}" for i in range(len(EVIL))])
def test_payload_is_refused_or_confined_to_one_word(field: str, payload: str) -> None:
    config = _render_with(field, payload)
    if config is None:
        return
    clean_lb = clone(BASE)
    if field in BENIGN:
        FIELDS[field](clean_lb, BENIGN[field])
    assert shape(config) == shape(render_haproxy_config(spec(clean_lb), OPTIONS)), config
    assert not any(ch in config for ch in "\x00\r\u2028")
    assert not any(_words(line)[1:2] == ["evil"] for line in config.splitlines())


def test_accepted_hostile_configs_pass_haproxy_check(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    accepted = [c for f in FIELDS for p in EVIL if (c := _render_with(f, p)) is not None]
    assert len(accepted) >= 2  # the legal url_path and cookie_name payloads
    for i, config in enumerate(accepted):
        path = tmp_path / f"{i}.cfg"
        path.write_text(config)
        result = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                                text=True, env={**os.environ, "LBAAS_RUN_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr + config


def test_known_payloads_are_accepted_only_inside_quotes() -> None:
    """The quoting path is really exercised: legal but HAProxy-special values get through."""
    lb = clone(BASE)
    _hm(lb)["url_path"] = "/a'b#c$d$(HOME)%41"
    _pool(lb)["session_persistence"] = {"type": "APP_COOKIE", "cookie_name": "sess'#$id"}
    config = render_haproxy_config(spec(lb), OPTIONS)
    assert "uri '/a'\\''b#c$d$(HOME)%41' ver" in config
    sends = [_words(x) for x in config.splitlines() if "http-check send" in x]
    assert sends == [["http-check", "send", "meth", "GET", "uri", "/a'b#c$d$(HOME)%41", "ver",
                      "HTTP/1.1", "hdr", "Host", "app.example.com"]]


@pytest.mark.parametrize("field", sorted(k for k in L7_FIELDS if "value" in k))
def test_rule_values_can_never_become_acl_flags(field: str) -> None:
    """``-f /etc/passwd`` as a pattern would load a file: values always follow ``--``."""
    config = _render_with(field, "-f /etc/passwd")
    if config is None:
        return
    acls = [_words(x) for x in config.splitlines() if x.strip().startswith("acl ")]
    assert acls and all(w[-2:] == ["--", "-f /etc/passwd"] for w in acls), acls


def test_redirect_targets_are_not_log_format_expressions() -> None:
    lb = clone(BASE)
    FIELDS["l7policy.redirect_url"](lb, "https://example.com/%[src]?a=%H")
    config = render_haproxy_config(spec(lb), OPTIONS)
    assert "location 'https://example.com/%%[src]?a=%%H' if" in config
