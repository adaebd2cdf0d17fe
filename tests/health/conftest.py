"""Fixture: a health manager on loopback (real UDP) beside the fake-driver API service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from heartbeat_helpers import Running


@pytest.fixture
def health(api: Any) -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def start(**options: Any) -> Running:
        running = Running(api, **options)
        made.append(running)
        return running

    yield start
    for running in made:
        running.close()
