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

from dataclasses import dataclass, field, replace
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


@dataclass
class Created:
    """The rows a single-call create inserted, in creation order: the response is rendered
    from them instead of being read back."""

    listeners: list[Row[Any]] = field(default_factory=list)
    pools: list[Row[Any]] = field(default_factory=list)
    members: dict[str, list[Row[Any]]] = field(default_factory=dict)  # by pool id
    monitors: dict[str, Row[Any]] = field(default_factory=dict)  # by pool id
    tagged: set[str] = field(default_factory=set)  # ids of the objects given tags
    policies_given: bool = False  # any L7 policy in the request


def _create_pool(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                 now: datetime, created: Created) -> str:
    for attr in ("protocol", "lb_algorithm"):
        if not body.get(attr):
            raise ValidationFailure(f"Pool definition for '{body.get('name')}' missing required "
                                    f"attribute: {attr}")
    values = pools.prepare_pool(conn, req, lb, body, now)
    pools.insert_pool(conn, values, body.get("tags"))
    created.pools.append(common.inserted_row(conn, t.pool, values, pools.LABEL))
    _tagged(created, values["id"], body)
    monitor = body.get("healthmonitor")
    if monitor is not None:
        common.check_quota(conn, req, lb.project_id, "health_monitor")
        hm_values = healthmonitors.prepare_hm(req, monitor, values["protocol"])
        hm = healthmonitors.insert_hm_row(conn, hm_values, values["id"], lb.project_id, now,
                                          monitor.get("tags"), new_pool=True)
        created.monitors[values["id"]] = common.inserted_row(conn, t.health_monitor, hm,
                                                             healthmonitors.LABEL)
        _tagged(created, hm["id"], monitor)
    member_bodies = body.get("members") or []
    common.check_quota(conn, req, lb.project_id, "member", len(member_bodies))
    taken: set[tuple[str, int]] = set()  # the new pool's members
    for i, member in enumerate(member_bodies):
        # a microsecond apart so listing keeps the request's order
        row = members.prepare_member(conn, req, lb, values["id"], member,
                                     now + timedelta(microseconds=i), monitor is not None)
        member_legs.check(conn, req, lb, [row["subnet_id"]])
        members.insert_member(conn, row, member.get("tags"), taken)
        created.members.setdefault(values["id"], []).append(
            common.inserted_row(conn, t.member, row, members.LABEL))
        _tagged(created, row["id"], member)
    return str(values["id"])


def _tagged(created: Created, ident: str, body: dict[str, Any]) -> None:
    if body.get("tags"):
        created.tagged.add(ident)


def _create_listener(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                     pool_ids: dict[str, str], now: datetime, created: Created) -> None:
    body = dict(body)
    default_pool = body.pop("default_pool", None)
    policy_bodies = body.pop("l7policies", None) or []
    created.policies_given = created.policies_given or bool(policy_bodies)
    if default_pool is not None:
        body["default_pool_id"] = pool_ids[default_pool["name"]]
    values = listeners.prepare_listener(conn, req, lb, body, now, new_lb=(
        {r.id: r for r in created.pools}, created.listeners))
    listeners.insert_listener(conn, values, body.get("tags"))
    listener = common.inserted_row(conn, t.listener, values, listeners.LABEL)
    created.listeners.append(listener)
    _tagged(created, values["id"], body)
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


def create_graph(conn: Connection, req: ApiRequest, lb: Row[Any], body: dict[str, Any],
                 now: datetime) -> Created:
    """Create every child of a new load balancer (``lb``: its row, inserted in the same
    transaction)."""
    created = Created()
    project_id = lb.project_id
    listener_bodies = body.get("listeners") or []
    definitions = collect_pools(listener_bodies, body.get("pools") or [])
    common.check_quota(conn, req, project_id, "pool", len(definitions))
    pool_ids: dict[str, str] = {}
    for i, pool in enumerate(definitions):
        pool_ids[pool.get("name") or ""] = _create_pool(conn, req, lb, pool,
                                              now + timedelta(microseconds=i), created)
    common.check_quota(conn, req, project_id, "listener", len(listener_bodies))
    for i, listener in enumerate(listener_bodies):
        _create_listener(conn, req, lb, listener, pool_ids, now + timedelta(microseconds=i),
                         created)
    return created


def _tags(conn: Connection, created: Created, ident: str) -> list[str]:
    """Tags of an object just created: read back only when it was given some (the database's
    collation orders them, as every later read shows them)."""
    return tags_for(conn, [ident])[ident] if ident in created.tagged else []


def _by_creation(rows: list[Row[Any]]) -> list[Row[Any]]:
    return sorted(rows, key=lambda r: (r.created_at, r.id))


def _pool_listeners(conn: Connection, pool_id: str, created: Created) -> list[str]:
    """``pools.pool_listener_ids`` for a pool of this request: without L7 policies (which
    can redirect to it) only this request's listeners can use it, as their default pool."""
    if created.policies_given:
        return pools.pool_listener_ids(conn, [pool_id])[pool_id]
    return [r.id for r in _by_creation(created.listeners) if r.default_pool_id == pool_id]


def _full_pool(conn: Connection, row: Row[Any], created: Created) -> dict[str, Any]:
    member_rows = _by_creation(created.members.get(row.id, []))
    hm = created.monitors.get(row.id)
    view = pools.render(row, _pool_listeners(conn, row.id, created),
                        [m.id for m in member_rows], None if hm is None else hm.id,
                        _tags(conn, created, row.id))
    # upstream's PoolFullResponse leaves these unset, so they are not rendered at all
    view.pop("loadbalancers", None)
    view.pop("healthmonitor_id", None)
    view["members"] = [members.render_member(m, _tags(conn, created, m.id))
                       for m in member_rows]
    if hm is not None:
        view["healthmonitor"] = healthmonitors.render(hm, _tags(conn, created, hm.id))
        view["healthmonitor"].pop("pools", None)
    return view


def _full_listener(conn: Connection, row: Row[Any], created: Created) -> dict[str, Any]:
    policy_rows = list(conn.execute(select(t.l7policy).where(t.l7policy.c.listener_id == row.id)
                                    .order_by(t.l7policy.c.position))) \
        if created.policies_given else []
    view = listeners.render(row, [p.id for p in policy_rows], _tags(conn, created, row.id))
    view.pop("loadbalancers", None)
    policies = l7policies.render_many(conn, policy_rows)
    for policy in policies:
        rule_rows = list(conn.execute(select(t.l7rule).where(
            t.l7rule.c.l7policy_id == policy["id"]).order_by(t.l7rule.c.created_at)))
        policy["rules"] = l7rules.render_many(conn, rule_rows)
    view["l7policies"] = policies
    return view


def render_full(conn: Connection, view: dict[str, Any], created: Created) -> dict[str, Any]:
    """Upstream's ``LoadBalancerFullResponse``: children as full objects, not ids, rendered
    from the rows the create inserted (L7 policies and rules are read back)."""
    return {**view,
            "listeners": [_full_listener(conn, r, created)
                          for r in _by_creation(created.listeners)],
            "pools": [_full_pool(conn, r, created) for r in _by_creation(created.pools)]}


loadbalancers.GRAPH_HOOK.update(create=create_graph, render_full=render_full,
                                listener_type=LISTENER, pool_type=POOL)
# the load balancer's OpenAPI body was built before the nested types existed
loadbalancers.OPENAPI["create"] = envelope_openapi("loadbalancer", loadbalancers.FIELDS,
                                                   "create")


def register(router: Router) -> None:
    """No routes of its own: importing the module plugs it into the load balancer create."""
