"""Load a whole load balancer (the aggregate the reconciler and ``render`` work from).

``load_rows`` reads the live child rows (not being deleted) with their statuses, by table name;
``assemble`` nests them under the load balancer as the typed, frozen aggregate render takes
(``lbaas.domain.spec.LoadBalancerSpec``: only the fields that shape the data plane). The
reconciler puts ``controller.containment`` between the two (objects in ERROR are rendered from
the configuration the data plane last accepted).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, bindparam, select

from lbaas.domain.spec import (
    HealthMonitorSpec,
    L7PolicySpec,
    L7RuleSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
)
from lbaas.store import tables as t

_T = TypeVar("_T")
Rows = dict[str, list[dict[str, Any]]]  # table name -> rows (plain dicts, store column names)
STRIP = ("provisioning_status", "operating_status", "created_at", "updated_at", "generation",
         "applied_generation", "last_request_id")


def _scoped(table: Any, where: Any) -> Any:
    return select(table).where(where).order_by(table.c.id)


# Built once with the load balancer id as a parameter: building a Select and its cache key
# on every pass was a fifth of the reconciler's CPU on PostgreSQL (docs/scale.md).
_LB = bindparam("lb_id")
_LISTENER_IDS = select(t.listener.c.id).where(t.listener.c.load_balancer_id == _LB)
_POOL_IDS = select(t.pool.c.id).where(t.pool.c.load_balancer_id == _LB)
_LB_ROW = select(t.load_balancer).where(t.load_balancer.c.id == _LB)
# (table name, statement, parent table, parent column)
_CHILDREN = (
    ("listener", _scoped(t.listener, t.listener.c.load_balancer_id == _LB), None, None),
    ("pool", _scoped(t.pool, t.pool.c.load_balancer_id == _LB), None, None),
    ("member", _scoped(t.member, t.member.c.pool_id.in_(_POOL_IDS)), "pool", "pool_id"),
    ("health_monitor", _scoped(t.health_monitor, t.health_monitor.c.pool_id.in_(_POOL_IDS)),
     "pool", "pool_id"),
    ("l7policy", _scoped(t.l7policy, t.l7policy.c.listener_id.in_(_LISTENER_IDS)),
     "listener", "listener_id"),
    ("l7rule", _scoped(t.l7rule, t.l7rule.c.l7policy_id.in_(
        select(t.l7policy.c.id).where(t.l7policy.c.listener_id.in_(_LISTENER_IDS)))),
     "l7policy", "l7policy_id"),
)


def read_children(conn: Connection, lb_id: str) -> Rows:
    """Every child row of the load balancer by table name, statuses included, those being
    deleted too (a table whose parents are all absent is not read: it has no rows)."""
    params = {"lb_id": lb_id}
    rows: Rows = {}
    for name, query, parent, _ in _CHILDREN:
        rows[name] = [] if parent is not None and not rows[parent] else \
            [plain(r) for r in conn.execute(query, params)]
    return rows


def live(rows: Rows) -> Rows:
    """``rows`` without those being deleted, nor the children of those."""
    out: Rows = {}
    for name, _, parent, column in _CHILDREN:
        kept = [r for r in rows[name] if r["provisioning_status"] != "PENDING_DELETE"]
        if parent is not None:
            parents = {p["id"] for p in out[parent]}
            kept = [r for r in kept if r[column] in parents]
        out[name] = kept
    return out


def load_rows(conn: Connection, lb_id: str, lb_row: dict[str, Any] | None = None) \
        -> tuple[dict[str, Any], Rows]:
    """The load balancer row (``lb_row`` when the caller has just read it) and its live
    children by table name, statuses included (a child of a parent being deleted is left out
    with it)."""
    lb = lb_row if lb_row is not None else plain(conn.execute(_LB_ROW, {"lb_id": lb_id}).one())
    return lb, live(read_children(conn, lb_id))


# The reconciler's read of a load balancer: its row, the configuration its amphorae last
# accepted and, on PostgreSQL, every child row and its live amphorae — one statement where the
# tables one by one were nine (their result set-up was most of a pass's CPU, docs/scale.md).
# On PostgreSQL the whole answer is one JSON text: psycopg builds a description object per
# column of every result, and decoding one text with orjson costs less than 27 of them.
ACCEPTED = "accepted_objects"
CHILDREN_JSON = "children_json"
AMPHORAE_JSON = "amphorae_json"
LB_READ_EXTRAS = (ACCEPTED, CHILDREN_JSON, AMPHORAE_JSON)
# an amphora row from the JSON: attributes as a Row's (its dates are ISO text)
AmphoraRow = namedtuple("AmphoraRow", [col.name for col in t.amphora.c])  # type: ignore[misc]
_LB_COLUMNS = tuple(col.name for col in t.load_balancer.c)


class ReadRow:
    """A load balancer row decoded from PostgreSQL's JSON read: its columns as attributes
    (dates as ISO text), they and the extras in ``_mapping``, as a Row's."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def _pg_children() -> Any:
    from sqlalchemy import func, literal_column
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    wheres = {
        "listener": lambda x: x.c.load_balancer_id == _LB,
        "pool": lambda x: x.c.load_balancer_id == _LB,
        "member": lambda x: x.c.pool_id.in_(_POOL_IDS),
        "health_monitor": lambda x: x.c.pool_id.in_(_POOL_IDS),
        "l7policy": lambda x: x.c.listener_id.in_(_LISTENER_IDS),
        "l7rule": lambda x: x.c.l7policy_id.in_(
            select(t.l7policy.c.id).where(t.l7policy.c.listener_id.in_(_LISTENER_IDS))),
    }
    pairs: list[Any] = []
    for name, _, _, _ in _CHILDREN:
        x = getattr(t, name).alias(f"j_{name}")
        rows = func.json_agg(aggregate_order_by(literal_column(x.name), x.c.id))
        none = literal_column("'[]'::json")
        pairs += [literal_column(f"'{name}'"), select(func.coalesce(rows, none))
                  .select_from(x).where(wheres[name](x)).scalar_subquery()]
    return func.json_build_object(*pairs)


def _pg_amphorae() -> Any:
    """The live amphorae (as ``LIVE_AMPHORAE`` in the reconciler), as a JSON array."""
    from sqlalchemy import func, literal_column
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    x = t.amphora.alias("j_amphora")
    rows = func.json_agg(aggregate_order_by(literal_column(x.name), x.c.id))
    return select(func.coalesce(rows, literal_column("'[]'::json"))).select_from(x).where(
        x.c.load_balancer_id == _LB, x.c.status != "DELETED").scalar_subquery()


@functools.cache
def lb_read(dialect: str) -> Any:
    """The statement (parameter ``lb_id``) whose result ``read_lb`` decodes (built once per
    dialect): on PostgreSQL one JSON text, elsewhere the row with ``ACCEPTED``."""
    accepted = select(t.accepted_config.c.objects).where(
        t.accepted_config.c.load_balancer_id == _LB).scalar_subquery()
    if dialect != "postgresql":
        return select(t.load_balancer, accepted.label(ACCEPTED)).where(
            t.load_balancer.c.id == _LB)
    from sqlalchemy import Text, cast, func, literal_column

    document = func.json_build_object(
        literal_column("'lb'"), func.row_to_json(literal_column(t.load_balancer.name)),
        literal_column(f"'{ACCEPTED}'"), accepted,
        literal_column(f"'{CHILDREN_JSON}'"), _pg_children(),
        literal_column(f"'{AMPHORAE_JSON}'"), _pg_amphorae())
    return select(cast(document, Text)).select_from(t.load_balancer).where(
        t.load_balancer.c.id == _LB)


def read_lb(conn: Connection, statement: Any, lb_id: str) -> Any:
    """The load balancer's ``lb_read`` row (None if there is none): a Row, or on PostgreSQL
    a ``ReadRow`` with the children and amphorae decoded."""
    result = conn.execute(statement, {"lb_id": lb_id})
    if conn.dialect.name != "postgresql":
        return result.first()
    text = result.scalar()
    if text is None:
        return None
    document = orjson.loads(text)
    # whole rows come back as JSON: keep to the columns this code knows (a column another
    # version added or has not added yet must not break the pass during a rolling upgrade)
    lb_row = document["lb"]
    mapping: dict[str, Any] = {name: lb_row.get(name) for name in _LB_COLUMNS}
    mapping[ACCEPTED] = document[ACCEPTED]
    mapping[CHILDREN_JSON] = document[CHILDREN_JSON]
    mapping[AMPHORAE_JSON] = [AmphoraRow._make(amp.get(name) for name in AmphoraRow._fields)
                              for amp in document[AMPHORAE_JSON]]
    return ReadRow(mapping)


def children_of(conn: Connection, row: Any) -> Rows:
    """Every child row (as ``read_children``) of the load balancer ``row`` (from ``read_lb``):
    from its JSON where the dialect has it, else read table by table."""
    rows = row._mapping.get(CHILDREN_JSON)
    if rows is None:
        return read_children(conn, row.id)
    return rows  # type: ignore[no-any-return]


def amphorae_of(row: Any) -> list[Any] | None:
    """The live amphorae of a ``read_lb`` row where the dialect has them (else None)."""
    return row._mapping.get(AMPHORAE_JSON)  # type: ignore[no-any-return]


def lb_plain(row: Any) -> dict[str, Any]:
    """The load balancer's own columns of a ``read_lb`` row, as ``plain``."""
    return {str(k): v for k, v in row._mapping.items() if k not in LB_READ_EXTRAS}


def assemble(lb: dict[str, Any], rows: Rows) -> LoadBalancerSpec:
    """Nest ``rows`` under ``lb`` as render's aggregate; children whose parent is not among
    them are left out. Children keep the order of ``rows``; a listener's policies are in
    position order, a pool's health monitor is its first."""
    members = _by_parent(rows["member"], "pool_id", MemberSpec.from_mapping)
    monitors: dict[str, HealthMonitorSpec] = {}
    for row in rows["health_monitor"]:
        if row["pool_id"] not in monitors:
            monitors[row["pool_id"]] = HealthMonitorSpec.from_mapping(row)
    rules = _by_parent(rows["l7rule"], "l7policy_id", L7RuleSpec.from_mapping)
    policies = _by_parent(sorted(rows["l7policy"], key=lambda p: p["position"]), "listener_id",
                          lambda p: L7PolicySpec.from_row(p, tuple(rules.get(p["id"], ()))))
    return LoadBalancerSpec.from_row(
        lb, [ListenerSpec.from_row(li, tuple(policies.get(li["id"], ())))
             for li in rows["listener"]],
        [PoolSpec.from_row(p, tuple(members.get(p["id"], ())), monitors.get(p["id"]))
         for p in rows["pool"]])


def _by_parent(rows: list[dict[str, Any]], column: str,
               build: Callable[[dict[str, Any]], _T]) -> dict[str, list[_T]]:
    """``build`` of each row, by the row's parent id (``column``), in the order of ``rows``."""
    out: dict[str, list[_T]] = {}
    for row in rows:
        out.setdefault(row[column], []).append(build(row))
    return out


def load_aggregate(conn: Connection, lb_id: str) -> LoadBalancerSpec:
    """Everything that shapes the data plane, skipping objects being deleted."""
    return assemble(*load_rows(conn, lb_id))


def plain(row: Any) -> dict[str, Any]:
    """A row as a plain dict (what ``load_rows`` takes as ``lb_row``)."""
    # Row keys are str subclasses (quoted_name); JSON encoders want plain str.
    return {str(k): v for k, v in row._mapping.items()}


