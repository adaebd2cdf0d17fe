"""The aggregate render takes (``lbaas.domain.spec``): store column names, frozen, built once."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from render_aggregates import http_site, spec
from render_scenarios import SCENARIOS

from lbaas.controller.aggregate import assemble
from lbaas.domain import spec as s
from lbaas.store import tables as t

CHILDREN = {"listeners", "pools", "members", "healthmonitor", "l7policies", "rules"}


@pytest.mark.parametrize(("cls", "table"), [
    (s.LoadBalancerSpec, t.load_balancer), (s.ListenerSpec, t.listener), (s.PoolSpec, t.pool),
    (s.MemberSpec, t.member), (s.HealthMonitorSpec, t.health_monitor),
    (s.L7PolicySpec, t.l7policy), (s.L7RuleSpec, t.l7rule)])
def test_every_field_is_a_column_of_its_table(cls: Any, table: Any) -> None:
    fields = {f.name for f in dataclasses.fields(cls)} - CHILDREN
    assert fields <= {str(col.name) for col in table.c}, cls


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_assemble_nests_flat_rows_as_from_mapping_reads_nested_ones(name: str) -> None:
    nested = SCENARIOS[name]()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "listener", "pool", "member", "health_monitor", "l7policy", "l7rule")}
    for li in nested["listeners"]:
        rows["listener"].append(li)
        for policy in li["l7policies"]:
            rows["l7policy"].append({**policy, "listener_id": li["id"]})
            rows["l7rule"] += [{**r, "l7policy_id": policy["id"]} for r in policy["rules"]]
    for pool in nested["pools"]:
        rows["pool"].append(pool)
        rows["member"] += [{**m, "pool_id": pool["id"]} for m in pool["members"]]
        if pool["healthmonitor"] is not None:
            rows["health_monitor"].append({**pool["healthmonitor"], "pool_id": pool["id"]})
    by_position = [{**li, "l7policies": sorted(li["l7policies"], key=lambda p: p["position"])}
                   for li in nested["listeners"]]  # assemble puts them in position order
    assert assemble(nested, rows) == spec({**nested, "listeners": by_position})


def test_it_is_frozen() -> None:
    lb = spec(http_site())
    with pytest.raises(dataclasses.FrozenInstanceError):
        lb.listeners[0].protocol = "TCP"  # type: ignore[misc]
    assert isinstance(lb.pools, tuple) and isinstance(lb.pools[0].members, tuple)
