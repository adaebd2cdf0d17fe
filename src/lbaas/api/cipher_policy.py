"""The operator's cipher prohibit list (``[api] tls_cipher_prohibit_list``, upstream's setting).

Upstream refuses a listener's or pool's ``tls_ciphers`` when one of its ``:``-separated entries
equals a prohibited one, and its list is empty by default. Here the default prohibits ``eNULL``
(no encryption), ``aNULL`` (no authentication) and ``@SECLEVEL=0`` (the only level at which
OpenSSL lets either be negotiated), and an entry is refused also when it is another name for
prohibited ciphers only: ``NULL-SHA``, ``COMPLEMENTOFALL`` or ``ADH-AES128-SHA`` name nothing
but eNULL or aNULL ciphers. Broad strings that merely include some (``HIGH``, ``ALL``) stay
allowed: at any security level above 0 OpenSSL never negotiates those ciphers.
``@SECLEVEL=N`` prohibits every level up to N. Removals (``!eNULL``, ``-aNULL``) and
reorderings (``+...``) never enable anything, so they are never refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lbaas.render import openssl

_SECLEVEL = re.compile(r"@SECLEVEL=(\d+)$", re.IGNORECASE)


def _level(entry: str) -> int | None:
    match = _SECLEVEL.match(entry)
    return int(match.group(1)) if match else None


def prohibited_entries(ciphers: str, prohibit_list: Iterable[str]) -> list[str]:
    """The entries of ``ciphers`` the prohibit list refuses, in their order."""
    prohibited = [p for p in prohibit_list if p]
    if not prohibited:
        return []
    exact = set(prohibited)
    levels = [lv for lv in map(_level, prohibited) if lv is not None]
    names: frozenset[str] = frozenset().union(
        *(openssl.cipher_names(p) for p in prohibited if not p.startswith("@")))
    out = []
    for entry in (e for e in ciphers.split(":") if e):
        if entry in exact:
            out.append(entry)
        elif (level := _level(entry)) is not None:
            if any(level <= lv for lv in levels):
                out.append(entry)
        elif entry[0] not in "!-+@" and not entry.startswith("TLS_") and names:
            named = openssl.cipher_names(entry)
            if named and named <= names:
                out.append(entry)
    return out
