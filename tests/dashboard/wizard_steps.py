"""Driving the five-step wizard the way a user does: fill each step, press "Next", and finish
with "Create Load Balancer". Shared by the fake-driver and the data-plane browser tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Wizard:
    name: str
    vip_subnet_id: str
    member_subnet_id: str
    members: list[tuple[str, int, int]]  # address, port, weight
    protocol: str = "HTTP"
    port: int = 80
    algorithm: str = "ROUND_ROBIN"
    monitor: dict[str, str] = field(default_factory=lambda: {
        "type": "HTTP", "delay": "1", "timeout": "1", "max_retries": "1",
        "url_path": "/healthcheck"})


def fill(page: Any, w: Wizard, shot: Callable[[Any, str], None] | None = None) -> None:
    """Open the wizard and fill its five steps; stops on the last one (before Create)."""
    page.get_by_role("link", name="Create Load Balancer").click()
    nxt = page.get_by_role("button", name="Next")
    step = page.locator("#step-loadbalancer")
    step.locator("[name=name]").fill(w.name)
    step.locator("[name=vip_subnet_id]").select_option(w.vip_subnet_id)
    if shot:
        shot(page, "wizard-1-load-balancer")
    nxt.click()
    step = page.locator("#step-listener")
    step.locator("[name=name]").fill(f"{w.name}-listener")
    step.locator("[name=protocol]").select_option(w.protocol)
    step.locator("[name=protocol_port]").fill(str(w.port))
    if shot:
        shot(page, "wizard-2-listener")
    nxt.click()
    step = page.locator("#step-pool")
    step.locator("[name=lb_algorithm]").select_option(w.algorithm)
    if shot:
        shot(page, "wizard-3-pool")
    nxt.click()
    step = page.locator("#step-members")
    for i, (address, port, weight) in enumerate(w.members):
        if i:
            step.get_by_role("button", name="Add Member").click()
        row = step.locator(".member-row").nth(i)
        row.locator("[name=address]").fill(address)
        row.locator("[name=subnet_id]").select_option(w.member_subnet_id)
        row.locator("[name=protocol_port]").fill(str(port))
        row.locator("[name=weight]").fill(str(weight))
    if shot:
        shot(page, "wizard-4-members")
    nxt.click()
    step = page.locator("#step-monitor")
    step.locator("[name=type]").select_option(w.monitor["type"])
    for key in ("delay", "timeout", "max_retries", "url_path"):
        step.locator(f"[name={key}]").fill(w.monitor[key])
    if shot:
        shot(page, "wizard-5-monitor")


def create(page: Any) -> str:
    """Press "Create Load Balancer"; returns the new load balancer's id (from the page URL)."""
    page.get_by_role("button", name="Create Load Balancer").click()
    page.wait_for_url("**/dashboard/#/loadbalancers/*-*")
    return str(page.url.rsplit("/", 1)[1])
