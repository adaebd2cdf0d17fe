"""The data plane's rules for API values: one source of truth for the API and for render.

Every rule here is something HAProxy 2.6 (or the renderer's quoting) refuses; the API checks a
value with the same function before accepting it, and render checks it again before writing
it, so an object the API accepts always renders and passes ``haproxy -c``
(tests/render/test_property_api_render.py). Rules return the reason (the API's wording) or
None; the API wraps it in Octavia's error format, render in ``RenderError``. Regexes are judged
by PCRE2 itself (``render.pcre2``), cipher strings by OpenSSL itself (``render.openssl``).
Where HAProxy can take a value with proper escaping the renderer escapes instead (url_path is
percent-encoded, ``allowed_cidrs`` and SNI certificates are not limited by HAProxy's 64 words
per line), so nothing here refuses those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lbaas.domain import constants as c
from lbaas.render import openssl, pcre2

MAX_INT32 = 2**31 - 1
# HAProxy timers stop at 2**31-1 ms ("timer overflow"): a monitor delay or timeout in seconds.
MAX_TIMER_S = MAX_INT32 // 1000
# HAProxy parses integer ACL patterns (ssl_c_verify eq N) as signed 64-bit numbers.
MAX_PATTERN_INT = 2**63 - 1

# Octavia's patterns, quoted in the messages; matched anchored with \A..\Z (a trailing newline
# slips through "$") and with ASCII digits only (Python's \d also takes '٢').
EXPECTED_CODES_PATTERN = r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$"
DOMAIN_NAME_PATTERN = r"^(?=.{1,253}\.?$)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|$))+$"
_EXPECTED_CODES = re.compile(r"\A(?:[0-9]{3}(?:[ \t]*,[ \t]*[0-9]{3})*|[0-9]{3}-[0-9]{3})\Z")
_DOMAIN_NAME = re.compile(
    r"\A(?=.{1,253}\.?\Z)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|\Z))+\Z")
URL_PATH_REASON = "Value must be a valid URL Path string"
# RFC 6265 separators and controls (Octavia's list) and, from its field pattern, any
# whitespace, ',', ';' and '\'; non-Latin-1 and unprintable characters are refused too.
_BAD_COOKIE_NAME = re.compile(r'[\x00-\x20\x22\x28-\x29\x2c\x2f\x3a-\x40\x5b-\x5d\x7b\x7d\x7f]'
                              r"|[\s,;\\]")
COOKIE_NAME_REASON = 'Supplied "cookie_name" is invalid.'
_CIPHER_NAME = re.compile(r"\A[A-Za-z0-9_\-.+!@=]+\Z")
# RFC 7230 token for header and cookie names used as a sample-fetch argument. Octavia's class
# also lets ',' through (a range typo); no request can carry such a name, and HAProxy 2.6
# splits req.hdr(a,b) into two arguments whatever the escaping.
_HEADER_KEY = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,255}\Z")
_DN_FIELD = re.compile(r"\A[A-Za-z][A-Za-z0-9-]*\Z")
INVALID_KEY_REASON = "Invalid characters in key"
INVALID_VALUE_REASON = "Invalid characters in comparison value"


def expected_codes_error(value: str) -> str | None:
    if not _EXPECTED_CODES.match(value):
        return f"Value should match the pattern {EXPECTED_CODES_PATTERN}"
    if "-" in value:
        low, high = value.split("-")
        if int(low) > int(high):
            return "Value should be a range of codes from the lower to the higher one"
    return None


def domain_name_error(value: str) -> str | None:
    return None if _DOMAIN_NAME.match(value) else \
        f"Value should match the pattern {DOMAIN_NAME_PATTERN}"


def url_path_error(value: str) -> str | None:
    """An origin-form path: one leading '/', no scheme or host, no whitespace or controls.
    Other characters outside RFC 3986 are fine: render percent-encodes them."""
    bad = (not value.startswith("/") or value.startswith("//")
           or any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F
                  or 0xD800 <= ord(ch) <= 0xDFFF for ch in value))
    return URL_PATH_REASON if bad else None


def cookie_name_error(value: str) -> str | None:
    bad = (not value or _BAD_COOKIE_NAME.search(value) is not None
           or any(ord(ch) > 0xFF or not ch.isprintable() for ch in value))
    return COOKIE_NAME_REASON if bad else None


def header_flag(value: str) -> bool | None:
    """An insert_headers value: "true"/"false" in any case, surrounding whitespace ignored
    (only the boolean reaches the configuration); None when it is neither."""
    text = value.strip().lower()
    return {"true": True, "false": False}.get(text)


def split_ciphers(value: str) -> tuple[list[str], list[str]]:
    """Octavia's one cipher string as (TLS 1.2 ``ciphers`` names, TLS 1.3 ``TLS_*`` suites)."""
    names = [n for n in value.split(":") if n]
    return [n for n in names if not n.startswith("TLS_")], [n for n in names
                                                           if n.startswith("TLS_")]


def ciphers_error(value: str) -> str | None:
    v12, v13 = split_ciphers(value)
    if any(not _CIPHER_NAME.match(n) for n in (*v12, *v13)):
        return ("Invalid characters in cipher string. Only alphanumeric, -, +, !, :, @, =, _, "
                "and . are allowed.")
    if v12 and (why := openssl.cipher_list_error(":".join(v12))):
        return f"The TLS cipher string '{':'.join(v12)}' {why}."
    if v13 and (why := openssl.ciphersuites_error(":".join(v13))):
        return f"The TLS 1.3 cipher suites '{':'.join(v13)}' {why}."
    return None


def version_range(versions: Sequence[str]) -> list[str]:
    """Every version from the lowest to the highest listed (render's ssl-min-ver/max-ver)."""
    indexes = [c.TLS_VERSIONS.index(v) for v in versions if v in c.TLS_VERSIONS]
    if not indexes:
        return []
    return list(c.TLS_VERSIONS[min(indexes):max(indexes) + 1])


def tls_versions_error(versions: Sequence[str]) -> str | None:
    if versions and not openssl.supported_versions(version_range(versions)):
        built = ", ".join(openssl.supported_versions(list(c.TLS_VERSIONS)))
        return (f"No TLS version in {', '.join(versions)} can be enabled: the load "
                f"balancer's TLS library supports {built}.")
    return None


def l7_key_error(rule_type: str, key: str) -> str | None:
    pattern = _DN_FIELD if rule_type == "SSL_DN_FIELD" else _HEADER_KEY
    return None if pattern.match(key) else INVALID_KEY_REASON


def l7_pattern(value: str) -> str:
    """What HAProxy compares with: Octavia's ``"quoted value"`` form means the inner text."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def l7_value_error(value: str) -> str | None:
    """Printable text only (a tab is legal in a quoted header value): no line or paragraph
    separators, no control or format characters, whatever a later reader makes of them."""
    if not value or not all(ch.isprintable() or ch == "\t" for ch in value):
        return INVALID_VALUE_REASON
    return None


def regex_error(pattern: str, caseless: bool) -> str | None:
    why = pcre2.regex_error(pattern, caseless)
    return None if why is None else f"Unable to parse regular expression: {why}"


def verify_result_error(value: str) -> str | None:
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_PATTERN_INT:
        return ("Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is "
                ">= 0")
    return None


def l7_rule_error(rule_type: str, compare_type: str, key: str | None,
                  value: str) -> str | None:
    """The data plane's rules for one L7 rule (after Octavia's own per-type rules)."""
    if rule_type == "SSL_CONN_HAS_CERT":
        return None  # rendered as ssl_c_used: the value is not written
    if (why := l7_value_error(value)) is not None:
        return why
    if rule_type == "SSL_VERIFY_RESULT":
        return verify_result_error(value)
    if rule_type in ("HEADER", "COOKIE", "SSL_DN_FIELD") and (
            why := l7_key_error(rule_type, key or "")) is not None:
        return why
    if compare_type == "REGEX":
        return regex_error(l7_pattern(value), caseless=rule_type == "HOST_NAME")
    return None
