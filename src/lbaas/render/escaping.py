"""Validation and quoting of every value that reaches an HAProxy configuration file.

Key choice: validate first, quote second. Each value is checked against the strictest whitelist
that Octavia's API defines for it (UUIDs, IP addresses, enums, integer ranges) and against the
data plane's rules in ``render.validate``, which the API applies too (expected codes and domain
name patterns, cookie names, url_path); anything else raises ``RenderError``. A url_path is
percent-encoded where it leaves RFC 3986, not refused. Free-form strings are then written as
HAProxy single-quoted words (nothing is interpreted inside single quotes: no ``#`` comments, no
``${VAR}`` expansion, no backslash escapes), with ``'`` written as ``'\\''`` exactly as in a
POSIX shell. CR, LF and NUL are refused everywhere, so no value can ever start a new
configuration line.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from lbaas.render import validate


class RenderError(ValueError):
    """A value in the aggregate that cannot be rendered safely.

    ``culprit`` is the innermost object it came from, as (table name, id), so the controller
    can leave that object out and render the rest (docs/decisions/0013)."""

    culprit: tuple[str, str] | None = None


@contextmanager
def blame(table: str, ident: Any) -> Iterator[None]:
    """RenderErrors raised inside name this object unless an inner object already claimed them."""
    try:
        yield
    except RenderError as exc:
        if exc.culprit is None and ident is not None:
            exc.culprit = (table, str(ident))
        raise


_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.I)
# RFC 3986 characters kept as they are in a request target; anything else is percent-encoded.
_URL_KEEP = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}")
_FORBIDDEN = re.compile(r"[\x00\r\n]")
_SAMPLE_ARG_SPECIAL = re.compile(r"([\\'\"(),\s])")


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RenderError(f"{field}: expected a string, got {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise RenderError(f"{field}: CR, LF and NUL are not allowed")
    return value


def quote(value: str) -> str:
    """One HAProxy configuration word holding exactly ``value`` (verified against haproxy 2.6)."""
    _text("value", value)
    return "'" + value.replace("'", "'\\''") + "'"


def sample_arg(value: str) -> str:
    """Escape ``value`` for use as an argument inside a sample fetch, e.g. ``req.cook(<arg>)``.

    The result still has to be passed through ``quote`` as part of the whole expression word.
    """
    return _SAMPLE_ARG_SPECIAL.sub(r"\\\1", _text("value", value))


def ident(field: str, value: Any) -> str:
    """An object id used as a proxy or server name: must be a UUID."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise RenderError(f"{field}: {value!r} is not a UUID")
    return value


def integer(field: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RenderError(f"{field}: expected an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise RenderError(f"{field}: {value} is outside {minimum}..{maximum}")
    return value


def port(field: str, value: Any) -> int:
    return integer(field, value, 1, 65535)


def ip(field: str, value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        addr = ipaddress.ip_address(_text(field, value))
    except ValueError as exc:
        raise RenderError(f"{field}: {value!r} is not an IP address") from exc
    if getattr(addr, "scope_id", None):  # "fe80::1%eth0": an interface name, not an address
        raise RenderError(f"{field}: {value!r} has a scope id")
    return addr


def host(field: str, value: Any) -> str:
    """An address as HAProxy reads it in ``bind``, ``server`` and ``addr``: IPv6 in brackets."""
    addr = ip(field, value)
    return f"[{addr.compressed}]" if addr.version == 6 else addr.compressed


def host_port(field: str, address: Any, port_value: Any) -> str:
    return f"{host(field, address)}:{port(field + ' port', port_value)}"


def cidr(field: str, value: Any) -> str:
    try:
        if "%" in _text(field, value):  # a scope id names an interface: never an IP network
            raise ValueError(value)
        return ipaddress.ip_network(value, strict=False).with_prefixlen
    except ValueError as exc:
        raise RenderError(f"{field}: {value!r} is not an IP network") from exc


def _checked(field: str, value: Any, reason: str | None) -> None:
    if reason is not None:
        raise RenderError(f"{field}: {value!r}: {reason}")


def url_path(value: Any) -> str:
    """An origin-form path as a valid request target: characters outside RFC 3986 (and a '%'
    that starts no escape) percent-encoded as UTF-8, as a browser would send them."""
    text = _text("url_path", value)
    _checked("url_path", value, validate.url_path_error(text))
    out, pos = [], 0
    while pos < len(text):
        kept = _URL_KEEP.match(text, pos)
        if kept:
            out.append(kept.group())
            pos = kept.end()
        else:
            out.append("".join(f"%{b:02X}" for b in text[pos].encode()))
            pos += 1
    return "".join(out)


def domain_name(value: Any) -> str:
    text = _text("domain_name", value)
    _checked("domain_name", value, validate.domain_name_error(text))
    return text


def expected_codes(value: Any) -> str:
    """Octavia's "200", "200,202" or "200-204", as HAProxy's ``status`` list (no spaces)."""
    text = _text("expected_codes", value)
    _checked("expected_codes", value, validate.expected_codes_error(text))
    return re.sub(r"[ \t]", "", text)


def cookie_name(value: Any) -> str:
    text = _text("cookie_name", value)
    _checked("cookie_name", value, validate.cookie_name_error(text))
    return text


def choice(field: str, value: Any, allowed: tuple[Any, ...] | frozenset[Any]) -> Any:
    if value not in allowed:
        raise RenderError(f"{field}: {value!r} is not one of {sorted(map(str, allowed))}")
    return value


def flag(field: str, value: Any) -> bool:
    """A boolean column; ``None`` counts as false (nullable columns such as ``backup``)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RenderError(f"{field}: expected a boolean, got {value!r}")
    return value


def header_flag(field: str, value: Any) -> bool:
    """An insert_headers value: Octavia's "true"/"false" strings (any case, padded); only the
    boolean is written, so surrounding whitespace (even a newline) does no harm."""
    if not isinstance(value, str):
        raise RenderError(f"{field}: expected a string, got {type(value).__name__}")
    flag = validate.header_flag(value)
    if flag is None:
        raise RenderError(f"{field}: {value!r} is not 'true' or 'false'")
    return flag


def json_value(field: str, value: Any) -> Any:
    """A JSON column's value: already decoded by SQLAlchemy, or still text from a raw query."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise RenderError(f"{field}: not valid JSON") from exc


def items(field: str, value: Any) -> list[Any]:
    """A list-valued attribute (JSON column or child objects); ``None`` is an empty list."""
    value = json_value(field, value)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise RenderError(f"{field}: expected a list, got {type(value).__name__}")
    return list(value)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Spec = TypeVar("_Spec", bound=_HasId)


def by_id(specs: Iterable[_Spec]) -> list[_Spec]:
    """Child objects of the aggregate (``lbaas.domain.spec``) sorted by id, as render walks them."""
    return sorted(specs, key=lambda x: str(x.id))


def objects(field: str, value: Any) -> list[Mapping[str, Any]]:
    """A JSON column holding objects (``additional_vips``), each a mapping, sorted by id."""
    out = items(field, value)
    if not all(isinstance(x, Mapping) for x in out):
        raise RenderError(f"{field}: expected a list of objects")
    return sorted(out, key=lambda x: str(x.get("id")))
