"""``json.dumps(value, separators=(",", ":"))`` for plain data, without the ``json`` package.

Key choice: the ``json`` package imports ``re`` and ``enum``, ~1.4 MB of resident memory in the
supervisor of every amphora, which only encodes one small heartbeat a second. Strings are escaped
by the same C function ``json`` uses (``_json.encode_basestring_ascii``); numbers use the same
``repr``; anything else than dicts with string keys, lists, tuples, strings, numbers, booleans and
None is refused, like non-finite floats.
"""

from __future__ import annotations

from _json import encode_basestring_ascii as _quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_INFINITY = float("inf")


def dumps(value: Any) -> str:
    parts: list[str] = []
    _encode(value, parts.append)
    return "".join(parts)


def _encode(value: Any, out: Callable[[str], None]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(_quote(value))
    elif isinstance(value, int):
        out(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (_INFINITY, -_INFINITY):
            raise ValueError(f"{value!r} is not JSON")
        out(float.__repr__(value))
    elif isinstance(value, dict):
        out("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            out("," if i else "")
            out(_quote(key))
            out(":")
            _encode(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for i, item in enumerate(value):
            out("," if i else "")
            _encode(item, out)
        out("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
