"""The supervisor's JSON encoder writes exactly what ``json.dumps`` writes, or refuses."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from lbaas.agent.compact_json import dumps

VALUES: list[Any] = [
    {"id": "amp", "seq": 1764450000123, "ver": 3, "ts": 1764450000.123456, "digest": None,
     "listeners": {"L1": {"status": "OPEN", "stats": {"rx": 0, "tx": 10, "conns": 2}}},
     "pools": {"P1:L1": {"status": "UP", "members": {"m1": "DRAIN", "m2": "no check"}}}},
    {"quote\"back\\slash": "tab\tnew\nline\r\x00\x1f", "unicode": "é€😀", "": ""},
    [True, False, None, 0, -1, 2**70, 0.1, -2.5e-300, 1e300, [], {}, [[{}]]],
    ("tuple", 1),
    "just a string",
    12,
    -0.0,
]


@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"))
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(("value", "error"), [
    ({1: "int key"}, TypeError), ({"set": {1}}, TypeError), (b"bytes", TypeError),
    (math.nan, ValueError), (math.inf, ValueError), ([-math.inf], ValueError),
])
def test_refuses_what_is_not_plain_json(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        dumps(value)
