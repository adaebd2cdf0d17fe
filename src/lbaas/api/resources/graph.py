"""Single-call ("graph") load balancer create: listeners, pools, members, monitors, L7 in one POST.

Follows upstream's ``_graph_create``: every embedded pool is named; a pool carrying more than its
name (and the two defaulted booleans) is a definition, a bare ``{"name": ...}`` a reference; all
definitions are created before the listeners that use them. Each object goes through the same
``prepare_*``/``insert_*`` functions as its own endpoint, inside the load balancer's create
transaction, so any error leaves nothing behind. As upstream, the graph path skips the L7
policy/rule quotas, the provider's per-object 501 checks and the member subnet lookup. This
module registers itself in ``loadbalancers.GRAPH_HOOK`` (the listener module imports the load
balancer module, so the load balancer module cannot import this one).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select

from lbaas.api import common
from lbaas.api.errors import Conflict, ValidationFailure
from lbaas.api.http import ApiRequest, Router
from lbaas.api.resources import (
    healthmonitors,
    l7policies,
    l7rules,
    listeners,
    loadbalancers,
    member_legs,
    members,
    pools,
)
from lbaas.api.schema import Field, ListOf, Object, envelope_openapi
from lbaas.domain import constants as c
from lbaas.store import tables as t
from lbaas.store.listing import tags_for

GIVEN = "__given__"  # the keys a pool object carried in the request
REFERENCE_KEYS = frozenset({"name", "admin_state_up", "tls_enabled", GIVEN})


class GraphPool(Object):
    """A pool object that remembers which keys the client sent (definition vs reference)."""

    def validate(self, name: str, value: Any) -> Any:
        parsed = super().validate(name, value)
        parsed[GIVEN] = frozenset(value)
        return parsed


def _without(fields: tuple[Field, ...], *names: str) -> tuple[Field, ...]:
    return tuple(f for f in fields if f.name not in names)


def _optional(fields: tuple[Field, ...], *names: str) -> tuple[Field, ...]:
    return tuple(replace(f, required=False) if f.name in names else f for f in fields)


MEMBER = Object(_without(members.FIELDS, "project_id"), name="members")
HEALTH_MONITOR = Object(_without(healthmonitors.FIELDS, "pool_id", "project_id"),
                        name="healthmonitor")
POOL = GraphPool((
    *_optional(_without(pools.FIELDS, "loadbalancer_id", "listener_id", "project_id"),
               "protocol", "lb_algorithm"),
    Field("members", ListOf(MEMBER)),
    Field("healthmonitor", HEALTH_MONITOR),
), name="pool")
POLICY = Object((*_without(l7policies.FIELDS, "listener_id", "project_id", "redirect_pool_id"),
                 Field("redirect_pool", POOL)), name="l7policies")
LISTENER = Object((*_without(listeners.FIELDS, "loadbalancer_id", "project_id"),
                   Field("default_pool", POOL), Field("l7policies", ListOf(POLICY))),
                  name="listeners")


def _is_definition(pool: dict[str, Any]) -> bool:
    return bool(pool[GIVEN] - REFERENCE_KEYS)


def _named(pool: dict[str, Any]) -> str:
    if not pool.get("name"):
        raise ValidationFailure("Pools must be named when creating a fully populated "
                                "loadbalancer.")
    return str(pool["name"])


def collect_pools(listener_bodies: list[dict[str, Any]], pool_bodies: list[dict[str, Any]]) \
        -> list[dict[str, Any]]:
    """Every pool definition of the tree, checked as upstream checks them (400 otherwise)."""
    definitions = list(pool_bodies)
    references: set[str] = set()
    embedded = [li.get("default_pool") for li in listener_bodies]
    embedded += [p.get("redirect_pool") for li in listener_bodies
                 for p in li.get("l7policies") or []]
    for pool in embedded:
        if pool is None:
            continue
        name = _named(pool)
        if _is_definition(pool):
            definitions.append(pool)
        else:
            references.add(name)
    # as upstream: top-level pools need no name (two unnamed ones are "not unique")
    names = [p.get("name") for p in definitions]
    if len(names) != len(set(names)):
        raise ValidationFailure("Pool names must be unique when creating a fully populated "
                                "loadbalancer.")
    for name in sorted(references):
        if name not in names:
            raise ValidationFailure(f"Pool '{name}' was referenced but no full definition was "
                                    "found.")
    return definitions


def _create_pool(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                 now: datetime) -> str:
    for attr in ("protocol", "lb_algorithm"):
        if not body.get(attr):
            raise ValidationFailure(f"Pool definition for '{body.get('name')}' missing required "
                                    f"attribute: {attr}")
    values = pools.prepare_pool(conn, req, lb, body, now)
    pools.insert_pool(conn, values, body.get("tags"))
    monitor = body.get("healthmonitor")
    if monitor is not None:
        common.check_quota(conn, req, lb.project_id, "health_monitor")
        hm_values = healthmonitors.prepare_hm(req, monitor, values["protocol"])
        healthmonitors.insert_hm(conn, hm_values, values["id"], lb.project_id, now,
                                 monitor.get("tags"))
    member_bodies = body.get("members") or []
    common.check_quota(conn, req, lb.project_id, "member", len(member_bodies))
    for i, member in enumerate(member_bodies):
        # a microsecond apart so listing keeps the request's order
        row = members.prepare_member(conn, req, lb, values["id"], member,
                                     now + timedelta(microseconds=i), monitor is not None)
        member_legs.check(conn, req, lb, [row["subnet_id"]])
        members.insert_member(conn, row, member.get("tags"))
    return str(values["id"])


def _create_listener(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                     pool_ids: dict[str, str], now: datetime) -> None:
    body = dict(body)
    default_pool = body.pop("default_pool", None)
    policy_bodies = body.pop("l7policies", None) or []
    if default_pool is not None:
        body["default_pool_id"] = pool_ids[default_pool["name"]]
    values = listeners.prepare_listener(conn, req, lb, body, now)
    listeners.insert_listener(conn, values, body.get("tags"))
    listener = conn.execute(select(t.listener).where(t.listener.c.id == values["id"])).one()
    for i, policy in enumerate(policy_bodies):
        policy = dict(policy)
        redirect_pool = policy.pop("redirect_pool", None)
        if redirect_pool is not None:
            policy["redirect_pool_id"] = pool_ids[redirect_pool["name"]]
        policy_values = l7policies.prepare_policy(conn, listener, policy)
        policy_id = common.new_id()
        rule_bodies = policy.get("rules") or []
        if len(rule_bodies) > c.MAX_L7_RULES_PER_POLICY:
            raise Conflict(f"Too many rules on L7 policy {policy_id}")
        rules = [{"values": l7rules.prepare_rule(r), "tags": r.get("tags")} for r in rule_bodies]
        l7policies.insert_policy(conn, policy_values, listener.id, lb.project_id,
                                 now + timedelta(microseconds=i), policy.get("position"),
                                 policy.get("tags"), rules, policy_id)


def create_graph(conn: Connection, req: ApiRequest, lb_id: str, project_id: str,
                 body: dict[str, Any], now: datetime) -> None:
    """Create every child of a new load balancer (same transaction as the load balancer)."""
    listener_bodies = body.get("listeners") or []
    definitions = collect_pools(listener_bodies, body.get("pools") or [])
    lb = conn.execute(select(t.load_balancer).where(t.load_balancer.c.id == lb_id)).one()
    common.check_quota(conn, req, project_id, "pool", len(definitions))
    pool_ids: dict[str, str] = {}
    for i, pool in enumerate(definitions):
        pool_ids[pool.get("name") or ""] = _create_pool(conn, req, lb, pool,
                                              now + timedelta(microseconds=i))
    common.check_quota(conn, req, project_id, "listener", len(listener_bodies))
    for i, listener in enumerate(listener_bodies):
        _create_listener(conn, req, lb, listener, pool_ids, now + timedelta(microseconds=i))


def _full_pool(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    view = pools.render_pool(conn, row)
    # upstream's PoolFullResponse leaves these unset, so they are not rendered at all
    view.pop("loadbalancers", None)
    view.pop("healthmonitor_id", None)
    member_rows = list(conn.execute(select(t.member).where(t.member.c.pool_id == row.id)
                                    .order_by(t.member.c.created_at, t.member.c.id)))
    view["members"] = members.render_many(conn, member_rows)
    hm = conn.execute(select(t.health_monitor).where(t.health_monitor.c.pool_id == row.id)) \
        .first()
    if hm is not None:
        view["healthmonitor"] = healthmonitors.render(hm, tags_for(conn, hm.id))
        view["healthmonitor"].pop("pools", None)
    return view


def _full_listener(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    view = listeners.render_many(conn, [row])[0]
    view.pop("loadbalancers", None)
    policy_rows = list(conn.execute(select(t.l7policy).where(t.l7policy.c.listener_id == row.id)
                                    .order_by(t.l7policy.c.position)))
    policies = l7policies.render_many(conn, policy_rows)
    for policy in policies:
        rule_rows = list(conn.execute(select(t.l7rule).where(
            t.l7rule.c.l7policy_id == policy["id"]).order_by(t.l7rule.c.created_at)))
        policy["rules"] = l7rules.render_many(conn, rule_rows)
    view["l7policies"] = policies
    return view


def render_full(conn: Connection, view: dict[str, Any]) -> dict[str, Any]:
    """Upstream's ``LoadBalancerFullResponse``: children as full objects, not ids."""
    lb_id = view["id"]
    listener_rows = list(conn.execute(select(t.listener).where(
        t.listener.c.load_balancer_id == lb_id).order_by(t.listener.c.created_at)))
    pool_rows = list(conn.execute(select(t.pool).where(t.pool.c.load_balancer_id == lb_id)
                                  .order_by(t.pool.c.created_at)))
    return {**view, "listeners": [_full_listener(conn, r) for r in listener_rows],
            "pools": [_full_pool(conn, r) for r in pool_rows]}


loadbalancers.GRAPH_HOOK.update(create=create_graph, render_full=render_full,
                                listener_type=LISTENER, pool_type=POOL)
# the load balancer's OpenAPI body was built before the nested types existed
loadbalancers.OPENAPI["create"] = envelope_openapi("loadbalancer", loadbalancers.FIELDS,
                                                   "create")


def register(router: Router) -> None:
    """No routes of its own: importing the module plugs it into the load balancer create."""
