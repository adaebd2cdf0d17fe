"""What every handler can reach: settings, the database, policy and the reconcile notifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from lbaas.api.policy import Policy
from lbaas.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    engine: Engine
    policy: Policy
    # called with a load balancer id after a change is committed
    notify: Callable[[str], None] = lambda _lb_id: None
    extras: dict[str, Any] = field(default_factory=dict)
