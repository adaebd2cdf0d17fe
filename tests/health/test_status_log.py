"""Member operating-status changes are logged once each, as an operator follows them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_health_manager import build, message, statuses


def test_member_status_changes_are_logged_once(api: Any, health: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    ids = build(api)
    caplog.set_level(logging.INFO, logger="lbaas.health")
    hm = health()
    hm.send(message(ids, 1))
    hm.send(message(ids, 2, members=("UP", "DOWN")))
    hm.send(message(ids, 3, members=("UP", "DOWN")))  # no change: no line
    assert statuses(api, ids)["members"] == ["ONLINE", "ERROR"]
    lines = [r.getMessage() for r in caplog.records if r.name == "lbaas.health.writer"]
    first, second = ids["members"]
    prefix = f"of pool {ids['pool']} (load balancer {ids['lb']}): operating status"
    assert lines == [f"member {first} {prefix} OFFLINE -> ONLINE",
                     f"member {second} {prefix} OFFLINE -> ONLINE",
                     f"member {second} {prefix} ONLINE -> ERROR"]
