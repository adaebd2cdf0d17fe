"""Hypothesis strategies for API request bodies: valid shapes carrying hostile values.

Each body starts from what Octavia requires for its kind (a TERMINATED_HTTPS listener has a
certificate, a pool's protocol suits its listener, an APP_COOKIE persistence has a name, a
redirect has its target) and adds a few optional fields, each drawn from edge values (the
shapes that once slipped through: a trailing newline, a PCRE2-only regex, a timer past
HAProxy's limit, a scope id, an SSLv3-only list, 70 CIDRs) or from generated text. So most
bodies get past the API's cross-field rules and the value rules are what decides; the property
test keeps what the API accepts and renders it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from lbaas.domain import constants as c

Draw = Callable[[st.SearchStrategy[Any]], Any]

# Text with the characters that matter to a configuration file and to the rules.
TEXT_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(list("\t\n\r\x00\x07\x7f\x85\xa0\xad\u00e9\u200b\u2028\ufeff\U0001f600"
                         "'\"\\%{}[]()#$ ,;")),
)
REGEX_ALPHABET = st.sampled_from(list("ab.*+?()[]{}|^$\\-:=!<>Pp0123456789wdsuNxQEk,/é"))


def text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(TEXT_ALPHABET, max_size=max_size)


def ints(*edges: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edges), st.integers(min(edges), max(edges)))


def edges_or(values: list[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), other)


TIMER = ints(0, 1, 5, 2147483, 2147484, 3_000_000)
MS_TIMEOUT = ints(0, 1, 50000, c.MAX_TIMEOUT_MS, c.MAX_TIMEOUT_MS + 1)
CIPHERS = edges_or([
    "FOO", "RC4-MD5", "DEFAULT:!ALL", "TLS_FOO", "FOO:AES128-SHA", "eNULL", "HIGH:!aNULL",
    "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
    "AES128 crt /etc/passwd", "A'B", "::", "TLS_FOO:ECDHE-RSA-AES128-GCM-SHA256"],
    st.text(st.sampled_from(list("AES-128:!+@=_.TLSGCMSHAecdh")), max_size=30))
VERSIONS = st.lists(st.sampled_from([*c.TLS_VERSIONS, "SSLv3", "TLSv9"]), min_size=1,
                    max_size=3)
ALPN = st.lists(st.sampled_from([*c.ALPN_PROTOCOLS, "h3"]), min_size=1, max_size=3)
CIDR = edges_or(["10.0.0.0/8", "192.0.2.1/24", "0.0.0.0/0", "fe80::1%eth0/128",
                 "2001:db8::/32", "10.0.0.0/33", " 10.1.0.0/16"],
                st.builds(lambda a, b, n: f"10.{a}.{b}.0/{n}", st.integers(0, 255),
                          st.integers(0, 255), st.integers(16, 32)))
CIDRS = st.one_of(st.lists(CIDR, min_size=1, max_size=4),
                  st.integers(50, 80).map(lambda n: [f"10.{i}.0.0/16" for i in range(n)]))
HEADER_VALUE = st.sampled_from(["true", "false", "TRUE", " true ", "true\n", "false\r\n",
                                "yes", "", "tru\ne"])
EXPECTED_CODES = edges_or([
    "200", "200,202", "200-204", "999-100", "100-999", "200\n", "200, 202", "200,\n202",
    "\u0662\u0660\u0660", "000", "20", "200-"], text(12))
URL_PATH = edges_or([
    "/", "/health", '/a"b', "/a\\b", "/a{b}", "/a%{b}", "/é", "//evil", "/a b", "/a\nb",
    "/%zz", "/a?x=1#f", "/'quoted'"], text(30).map(lambda s: "/" + s))
DOMAIN = edges_or(["app.example.com", "app.example.com\n", "-bad.com", "a_b.example.com",
                   "x" * 64, "ok."], text(20))
COOKIE = edges_or(["SESSION", "sess'#$id", "sessé", "a\xa0b", "a b", "a;b", "Ångström",
                   "日本", "a\x85b", "a\x9fb"], text(20))
REGEX = edges_or([
    r"\u0041", "a{70000}", "(?a)x", "[[:foo:]]", r"(a)\1", r"\N{DIGIT ONE}", "^/api/.*$",
    '"quoted"', '"(a)\\1"', "a\u200bb", "(?i)x", "[[:alpha:]]+"],
    st.text(REGEX_ALPHABET, min_size=1, max_size=20))
L7_VALUE = edges_or(["/api", "example.com", '"a b"', '"x\ty"', "\u00e9", "a\u2028b", "png"],
                    text(20))
URL = edges_or(["http://example.com/", "https://a.example/x?y=%41", "http://a/%zz",
                "http://a/\u00e9", "http://a/%{x}", "ftp://a/", "http://a b/"],
               text(20).map(lambda s: "http://h/" + s))


def _extras(draw: Draw, fields: dict[str, st.SearchStrategy[Any]], most: int = 3) \
        -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=most))
    return {name: draw(fields[name]) for name in names}


@st.composite
def listener(draw: Draw, port: int, refs: list[str], protocol: str | None = None) \
        -> dict[str, Any]:
    protocol = protocol or draw(st.sampled_from(["HTTP", "HTTP", "TCP", "HTTPS",
                                                 "TERMINATED_HTTPS", "TERMINATED_HTTPS", "UDP",
                                                 "PROMETHEUS"]))
    body: dict[str, Any] = {"protocol": protocol, "protocol_port": port}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "connection_limit": ints(-1, 0, 10, 2**31 - 1, 2**31), "admin_state_up": st.booleans(),
        "timeout_client_data": MS_TIMEOUT, "timeout_member_data": MS_TIMEOUT,
        "timeout_tcp_inspect": MS_TIMEOUT, "allowed_cidrs": CIDRS}
    headers = list(c.HTTP_INSERT_HEADERS)
    if protocol == "TERMINATED_HTTPS":
        body["default_tls_container_ref"] = draw(st.sampled_from(refs[:3]))
        headers += list(c.SSL_CLIENT_HEADERS)
        fields.update({
            "tls_ciphers": CIPHERS, "tls_versions": VERSIONS, "alpn_protocols": ALPN,
            "sni_container_refs": st.lists(st.sampled_from(refs), max_size=34),
            "hsts_max_age": ints(0, 31536000, 2**31 - 1)})
        if draw(st.booleans()):
            body.update(client_authentication=draw(st.sampled_from(["OPTIONAL", "MANDATORY"])),
                        client_ca_tls_container_ref=refs[0],
                        client_crl_container_ref=draw(st.sampled_from([None, refs[0]])))
    if protocol in ("HTTP", "TERMINATED_HTTPS"):
        fields["insert_headers"] = st.dictionaries(st.sampled_from(headers), HEADER_VALUE,
                                                   min_size=1, max_size=4)
    return {**body, **_extras(draw, fields)}


@st.composite
def pool(draw: Draw, listener_protocol: str | None, refs: list[str]) -> dict[str, Any]:
    choices = sorted(c.VALID_LISTENER_POOL_PROTOCOLS.get(listener_protocol or "", ())) or \
        ["HTTP", "TCP", "HTTPS", "PROXY", "UDP"]
    protocol = draw(st.sampled_from(choices))
    body: dict[str, Any] = {"protocol": protocol, "lb_algorithm": draw(st.sampled_from(
        ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]))}
    fields: dict[str, st.SearchStrategy[Any]] = {"admin_state_up": st.booleans()}
    if protocol == "UDP":
        fields["session_persistence"] = st.fixed_dictionaries(
            {"type": st.just("SOURCE_IP")},
            optional={"persistence_timeout": ints(0, 1, 360, 2**31 - 1, 2**31),
                      "persistence_granularity": st.sampled_from(["255.255.255.255"])})
    else:
        fields["session_persistence"] = st.one_of(
            st.fixed_dictionaries({"type": st.sampled_from(["SOURCE_IP", "HTTP_COOKIE"])}),
            st.fixed_dictionaries({"type": st.just("APP_COOKIE"), "cookie_name": COOKIE}))
        if draw(st.booleans()):
            body["tls_enabled"] = True
            fields.update({"tls_ciphers": CIPHERS, "tls_versions": VERSIONS,
                           "alpn_protocols": ALPN, "tls_container_ref": st.sampled_from(refs[:2]),
                           "ca_tls_container_ref": st.just(refs[0])})
    return {**body, **_extras(draw, fields)}


def member(n: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "address": st.just(f"10.0.{n // 250}.{n % 250 + 2}"),
        "protocol_port": ints(1, 80, 65535),
    }, optional={
        "weight": ints(0, 1, 256), "backup": st.booleans(), "admin_state_up": st.booleans(),
        "monitor_address": st.sampled_from(["10.9.9.9", "fe80::1%eth0"]),
        "monitor_port": ints(1, 65535),
    })


@st.composite
def monitor(draw: Draw, pool_protocol: str, kind: str | None = None) -> dict[str, Any]:
    kinds = ["UDP-CONNECT", "HTTP", "TCP"] if pool_protocol == "UDP" else \
        ["HTTP", "HTTP", "HTTPS", "TCP", "TLS-HELLO", "PING"]
    kind = kind or draw(st.sampled_from(kinds))
    body: dict[str, Any] = {"type": kind, "delay": draw(TIMER), "timeout": draw(TIMER),
                            "max_retries": draw(ints(1, 10))}
    if kind == "UDP-CONNECT":
        body["delay"] = max(body["delay"], 3)
    fields: dict[str, st.SearchStrategy[Any]] = {"max_retries_down": ints(1, 10),
                                                 "admin_state_up": st.booleans()}
    if kind in ("HTTP", "HTTPS"):
        fields.update({"http_method": st.sampled_from(c.HTTP_METHODS), "url_path": URL_PATH,
                       "expected_codes": EXPECTED_CODES})
        if draw(st.booleans()):
            body.update(http_version=1.1, domain_name=draw(DOMAIN))
    return {**body, **_extras(draw, fields)}


@st.composite
def rule(draw: Draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["PATH", "PATH", "HOST_NAME", "HEADER", "COOKIE", "FILE_TYPE",
                                 "SSL_DN_FIELD", "SSL_VERIFY_RESULT", "SSL_CONN_HAS_CERT"]))
    compare = draw(st.sampled_from(["REGEX", "REGEX", *c.L7_COMPARE_TYPES]))
    body: dict[str, Any] = {"type": kind, "compare_type": compare,
                            "invert": draw(st.booleans())}
    if kind == "SSL_CONN_HAS_CERT":
        body.update(compare_type="EQUAL_TO", value="True")
    elif kind == "SSL_VERIFY_RESULT":
        body.update(compare_type="EQUAL_TO", value=draw(st.sampled_from(
            ["0", "19", str(2**63 - 1), str(2**63), "9" * 30])))
    else:
        body["value"] = draw(REGEX if compare == "REGEX" else L7_VALUE)
    if kind in ("HEADER", "COOKIE"):
        body["key"] = draw(st.sampled_from(["X-Test", "sess", "a,b", "bad key"]))
    if kind == "SSL_DN_FIELD":
        body["key"] = draw(st.sampled_from(["CN", "OU", "1bad"]))
    return body


@st.composite
def policy(draw: Draw, pool_ids: list[str]) -> dict[str, Any]:
    actions = ["REJECT", "REDIRECT_TO_URL", "REDIRECT_PREFIX"] + \
        (["REDIRECT_TO_POOL"] if pool_ids else [])
    action = draw(st.sampled_from(actions))
    body: dict[str, Any] = {"action": action, "rules": draw(st.lists(rule(), min_size=1,
                                                                      max_size=3))}
    if action == "REDIRECT_TO_POOL":
        body["redirect_pool_id"] = draw(st.sampled_from(pool_ids))
    elif action != "REJECT":
        body["redirect_url" if action == "REDIRECT_TO_URL" else "redirect_prefix"] = draw(URL)
        if draw(st.booleans()):
            body["redirect_http_code"] = draw(st.sampled_from([301, 302, 303, 307, 308]))
    if draw(st.booleans()):
        body["position"] = draw(ints(1, 2, 2147483647))
    return body
