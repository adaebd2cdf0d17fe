"""Issue 10 item 4: values the data plane refuses get a 400 in Octavia's format at the API.

Each case was accepted (201/200) before and then refused by render or ``haproxy -c``, leaving
the object in ERROR. The rules are the data plane's own (``lbaas.render.validate``: PCRE2 for
regexes, OpenSSL for cipher strings and versions, HAProxy's timer and integer limits), so the
same values are refused on create, on update and inside a policy's ``rules``. Values that
HAProxy can take once escaped are accepted instead; tests/render/test_findings_from_api.py
renders those and runs ``haproxy -c``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tls_material import seal_secret, universal

V2 = "/v2/lbaas"


def created(api: Any, lb_id: str, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    code, data = api.post(f"{V2}/{path}", {kind: body})
    assert code == 201, data
    api.wait_lb(lb_id)
    return dict(data[kind])


def refused(result: tuple[int, Any]) -> str:
    code, body = result
    assert code == 400, body
    return str(body["faultstring"])


@pytest.fixture()
def env(api: Any) -> dict[str, Any]:
    lb = api.create_lb(name="dataplane-rules")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    pool = created(api, lb["id"], "pools", "pool", {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    policy = created(api, lb["id"], "l7policies", "l7policy", {
        "listener_id": listener["id"], "action": "REJECT"})
    return {"api": api, "lb": lb, "listener": listener, "pool": pool, "policy": policy}


def secret_ref(api: Any, project_id: str) -> str:
    secret_id = seal_secret(api.service, project_id, universal())
    return f"https://keymanager.example/v1/secrets/{secret_id}"


# L7 rules -----------------------------------------------------------------------------------
# Python's re accepts all of these; HAProxy's PCRE2 (no auto-capture) refuses them.
PCRE2_REFUSES = {
    r"\u0041": r"PCRE2 does not support \F, \L, \l, \N{name}, \U, or \u",
    "a{70000}": "number too big in {} quantifier",
    "(?a)x": "unrecognized character after (? or (?-",
    "[[:foo:]]": "unknown POSIX class name",
    r"(a)\1": "reference to non-existent subpattern",
    r"\N{DIGIT ONE}": r"PCRE2 does not support \F, \L, \l, \N{name}, \U, or \u",
}


@pytest.mark.parametrize("pattern", sorted(PCRE2_REFUSES))
def test_regex_pcre2_refuses_is_400_on_create_update_and_with_policy(env: dict[str, Any],
                                                                     pattern: str) -> None:
    api, policy = env["api"], env["policy"]
    rules = f"{V2}/l7policies/{policy['id']}/rules"
    rule = {"type": "PATH", "compare_type": "REGEX", "value": pattern}
    expected = ("Error parsing L7Rule: Unable to parse regular expression: "
                + PCRE2_REFUSES[pattern])
    assert refused(api.post(rules, {"rule": rule})).startswith(expected)
    good = created(api, env["lb"]["id"], f"l7policies/{policy['id']}/rules", "rule",
                   {**rule, "value": "^/ok[0-9]+$"})
    assert refused(api.put(f"{rules}/{good['id']}", {"rule": {"value": pattern}})) \
        .startswith(expected)
    with_rules = {"listener_id": env["listener"]["id"], "action": "REJECT", "rules": [rule]}
    assert refused(api.post(f"{V2}/l7policies", {"l7policy": with_rules})).startswith(expected)


def test_regex_judged_as_rendered(env: dict[str, Any]) -> None:
    api, policy = env["api"], env["policy"]
    rules = f"{V2}/l7policies/{policy['id']}/rules"
    # The "quoted" form compares with the inner text: that is what PCRE2 judges.
    assert refused(api.post(rules, {"rule": {"type": "PATH", "compare_type": "REGEX",
                                             "value": '"(a)\\1"'}})) \
        .startswith("Error parsing L7Rule: Unable to parse regular expression:")
    for value in ("^/api/(?:v1|v2)/", "(?i)^/static", "x{,3}", "(?P<n>a)(?P=n)", "[é]+"):
        created(api, env["lb"]["id"], f"l7policies/{policy['id']}/rules", "rule",
                {"type": "PATH", "compare_type": "REGEX", "value": value})


@pytest.mark.parametrize("value", ["a\u200bb", "a\x07b", "a\u2028b", "a\x85b", "\u00ad"])
@pytest.mark.parametrize("rule_type", ["PATH", "HOST_NAME", "HEADER", "COOKIE"])
def test_control_and_format_characters_in_regex_rules(env: dict[str, Any], value: str,
                                                      rule_type: str) -> None:
    rule = {"type": rule_type, "compare_type": "REGEX", "value": value}
    if rule_type in ("HEADER", "COOKIE"):
        rule["key"] = "X-Test"
    rules = f"{V2}/l7policies/{env['policy']['id']}/rules"
    assert refused(env["api"].post(rules, {"rule": rule})) == \
        "Error parsing L7Rule: Invalid characters in comparison value"


def test_rule_keys_and_verify_results_the_data_plane_cannot_express(env: dict[str, Any]) -> None:
    rules = f"{V2}/l7policies/{env['policy']['id']}/rules"
    api = env["api"]
    # Octavia's header-name class lets ',' through; HAProxy splits req.hdr(a,b) in two.
    assert refused(api.post(rules, {"rule": {"type": "HEADER", "key": "a,b",
                                             "compare_type": "EQUAL_TO", "value": "x"}})) == \
        "Error parsing L7Rule: Invalid characters in key"
    # HAProxy reads ssl_c_verify patterns as signed 64-bit integers.
    assert refused(api.post(rules, {"rule": {"type": "SSL_VERIFY_RESULT",
                                             "compare_type": "EQUAL_TO",
                                             "value": str(2**63)}})).endswith(
        "L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0")
    created(api, env["lb"]["id"], f"l7policies/{env['policy']['id']}/rules", "rule",
            {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": str(2**63 - 1)})


# health monitors ----------------------------------------------------------------------------
def test_monitor_timers_stop_at_haproxy_limit(env: dict[str, Any]) -> None:
    api = env["api"]
    body = {"pool_id": env["pool"]["id"], "type": "HTTP", "delay": 5, "timeout": 3,
            "max_retries": 3}
    for field in ("delay", "timeout"):
        assert refused(api.post(f"{V2}/healthmonitors",
                                {"healthmonitor": {**body, field: 2147484}})) == (
            f"Invalid input for field/attribute {field}. Value: '2147484'. "
            "Value should be lower or equal to 2147483")
    hm = created(api, env["lb"]["id"], "healthmonitors", "healthmonitor",
                 {**body, "delay": 2147483, "timeout": 2147483})
    assert refused(api.put(f"{V2}/healthmonitors/{hm['id']}",
                           {"healthmonitor": {"delay": 3_000_000}})).endswith(
        "Value should be lower or equal to 2147483")


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("expected_codes", "999-100",
     "Value should be a range of codes from the lower to the higher one"),
    ("expected_codes", "200\n", "Value should match the pattern "
     r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$"),
    ("expected_codes", "200,\n202", "Value should match the pattern "
     r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$"),
    ("expected_codes", "\u0662\u0660\u0660", "Value should match the pattern "
     r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$"),
    ("domain_name", "app.example.com\n", "Value should match the pattern "
     r"^(?=.{1,253}\.?$)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|$))+$"),
])
def test_monitor_strings_the_data_plane_refuses(env: dict[str, Any], field: str, value: str,
                                                reason: str) -> None:
    api = env["api"]
    body = {"pool_id": env["pool"]["id"], "type": "HTTP", "delay": 5, "timeout": 3,
            "max_retries": 3, "http_version": 1.1, field: value}
    message = refused(api.post(f"{V2}/healthmonitors", {"healthmonitor": body}))
    assert message.startswith(f"Invalid input for field/attribute {field}. Value: ")
    assert message.endswith(reason)
    hm = created(api, env["lb"]["id"], "healthmonitors", "healthmonitor",
                 {**body, field: "app.example.com" if field == "domain_name" else "100-999"})
    assert refused(api.put(f"{V2}/healthmonitors/{hm['id']}",
                           {"healthmonitor": {field: value}})).endswith(reason)


# listeners and pools ------------------------------------------------------------------------
@pytest.mark.parametrize(("ciphers", "reason"), [
    ("FOO", "The TLS cipher string 'FOO' selects no cipher the load balancer's OpenSSL"),
    ("RC4-MD5", "The TLS cipher string 'RC4-MD5' selects no cipher"),
    ("DEFAULT:!ALL", "The TLS cipher string 'DEFAULT:!ALL' selects no cipher"),
    ("TLS_FOO", "The TLS 1.3 cipher suites 'TLS_FOO' names no cipher suite"),
])
def test_cipher_strings_openssl_refuses(api: Any, ciphers: str, reason: str) -> None:
    lb = api.create_lb(name="tls")
    ref = secret_ref(api, lb["project_id"])
    listener = {"loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS",
                "protocol_port": 443, "default_tls_container_ref": ref}
    message = refused(api.post(f"{V2}/listeners",
                               {"listener": {**listener, "tls_ciphers": ciphers}}))
    assert message.startswith(f"Validation failure: {reason}"), message
    made = created(api, lb["id"], "listeners", "listener",
                   {**listener, "tls_ciphers": "FOO:ECDHE-RSA-AES128-GCM-SHA256"})
    assert refused(api.put(f"{V2}/listeners/{made['id']}",
                           {"listener": {"tls_ciphers": ciphers}})).startswith(
        f"Validation failure: {reason}")
    pool = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "tls_enabled": True}
    assert refused(api.post(f"{V2}/pools", {"pool": {**pool, "tls_ciphers": ciphers}})) \
        .startswith(f"Validation failure: {reason}")


def test_tls_versions_none_of_which_openssl_can_enable(api: Any) -> None:
    lb = api.create_lb(name="tls")
    ref = secret_ref(api, lb["project_id"])
    listener = {"loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS",
                "protocol_port": 443, "default_tls_container_ref": ref}
    reason = "Validation failure: No TLS version in SSLv3 can be enabled"
    assert refused(api.post(f"{V2}/listeners", {"listener": {
        **listener, "tls_versions": ["SSLv3"]}})).startswith(reason)
    made = created(api, lb["id"], "listeners", "listener",
                   {**listener, "tls_versions": ["SSLv3", "TLSv1.2"]})  # HAProxy takes it
    assert refused(api.put(f"{V2}/listeners/{made['id']}",
                           {"listener": {"tls_versions": ["SSLv3"]}})).startswith(reason)
    pool = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    for tls in (True, False):  # stored with TLS off, rendered once it is turned on
        assert refused(api.post(f"{V2}/pools", {"pool": {
            **pool, "tls_enabled": tls, "tls_versions": ["SSLv3"]}})).startswith(reason)


@pytest.mark.parametrize("name", ["a\xa0b", "a\x85b", "a\x9fb", "sess\u00e9\u0100"])
def test_cookie_names_with_whitespace_controls_or_beyond_latin1(env: dict[str, Any],
                                                                name: str) -> None:
    sp = {"type": "APP_COOKIE", "cookie_name": name}
    body = {"loadbalancer_id": env["lb"]["id"], "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN", "session_persistence": sp}
    assert refused(env["api"].post(f"{V2}/pools", {"pool": body})) == \
        'Validation failure: Supplied "cookie_name" is invalid.'
    assert refused(env["api"].put(f"{V2}/pools/{env['pool']['id']}",
                                  {"pool": {"session_persistence": sp}})) == \
        'Validation failure: Supplied "cookie_name" is invalid.'


def test_integers_beyond_what_the_data_plane_takes(env: dict[str, Any]) -> None:
    api, lb = env["api"], env["lb"]
    assert refused(api.put(f"{V2}/listeners/{env['listener']['id']}",
                           {"listener": {"connection_limit": 2**31}})).endswith(
        "Value should be lower or equal to 2147483647")
    sp = {"type": "SOURCE_IP", "persistence_timeout": 2**31}
    assert refused(api.post(f"{V2}/pools", {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": sp}})).endswith("Value should be lower or equal to 2147483647")


def test_addresses_with_scope_ids_name_interfaces_not_hosts(env: dict[str, Any]) -> None:
    api = env["api"]
    assert refused(api.put(f"{V2}/listeners/{env['listener']['id']}",
                           {"listener": {"allowed_cidrs": ["fe80::1%eth0/128"]}})) == (
        "Invalid input for field/attribute allowed_cidrs. Value: 'fe80::1%eth0/128'. "
        "Value should be IPv4 or IPv6 CIDR format")
    member = {"address": "192.0.2.10", "protocol_port": 80, "monitor_address": "fe80::1%eth0"}
    assert refused(api.post(f"{V2}/pools/{env['pool']['id']}/members",
                            {"member": member})) == (
        "Invalid input for field/attribute monitor_address. Value: 'fe80::1%eth0'. "
        "Value should be IPv4 or IPv6 format")
