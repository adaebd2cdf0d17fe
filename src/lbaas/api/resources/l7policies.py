"""L7 policies: action/redirect sanitising (§9.6) and dense 1…N positions per listener.

``sanitize`` reproduces upstream's argument rules (REJECT clears targets, a lone redirect
target switches the action, ...). Positions are kept dense by ``place``: it renumbers the
listener's policies with the moving one at its requested slot, so insert, move and append are
one operation. ``prepare_policy``/``insert_policy`` are reused by the graph create.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, select, update

from lbaas.api import common, listing
from lbaas.api.errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    NotFound,
    ValidationFailure,
    provider_unsupported_option,
)
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud, l7rules
from lbaas.api.resources.spec import Resource, Target
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    PROJECT_ID,
    TAGS,
    Enum,
    Field,
    Int,
    ListOf,
    Object,
    String,
    Uuid,
    description_field,
    name_field,
    parse_envelope,
)
from lbaas.domain import constants as c
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, ids_by, tags_for

RESOURCE = "l7policy"
LABEL = "L7 Policy"
L7_LISTENER_PROTOCOLS = frozenset({"HTTP", "TERMINATED_HTTPS"})
URL_ACTIONS = frozenset({"REDIRECT_TO_URL", "REDIRECT_PREFIX"})
TARGETS = ("redirect_pool_id", "redirect_url", "redirect_prefix")
DEFAULT_REDIRECT_CODE = 302
ACTION_TARGET = {"REDIRECT_TO_POOL": "redirect_pool_id", "REDIRECT_TO_URL": "redirect_url",
                 "REDIRECT_PREFIX": "redirect_prefix"}
MISSING_TARGET = {"redirect_pool_id": "redirect_pool_id or redirect_pool",
                  "redirect_url": "redirect_url", "redirect_prefix": "redirect_prefix"}
# RFC 3986 characters (unreserved, reserved, '%'); anything else (spaces, controls) is invalid.
URI_CHARS = re.compile(r"\A[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")


def _url(name: str, value: str) -> str:
    """An absolute http(s) URL with a host, as upstream's rfc3986 check."""
    try:
        parts = urlsplit(value)
        ok = (URI_CHARS.match(value) is not None and parts.scheme in ("http", "https")
              and bool(parts.hostname) and not re.search(r"%(?![0-9A-Fa-f]{2})", value))
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        ok = False
    if not ok:
        raise InvalidInput(name, value, "Value must be a valid URL string")
    return value


RULE = Object(l7rules.FIELDS, name="rules")

FIELDS = (
    name_field(), description_field(), ADMIN_STATE_UP, PROJECT_ID, TAGS,
    Field("listener_id", Uuid(), required=True, on_update=False),
    Field("action", Enum(c.L7_ACTIONS), required=True),
    Field("redirect_pool_id", Uuid()),
    Field("redirect_url", String(2048), check=_url),
    Field("redirect_prefix", String(2048), check=_url),
    Field("redirect_http_code", Enum(c.REDIRECT_HTTP_CODES)),
    Field("position", Int(minimum=1, maximum=c.MAX_POLICY_POSITION)),
    Field("rules", ListOf(RULE), on_update=False),
)

COLLECTION = listing.Collection(t.l7policy, "l7policies", "l7policies_links")


# rendering --------------------------------------------------------------------------------------
def render(row: Row[Any], rules: list[str], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": common.text(row.name),
        "description": common.text(row.description),
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "admin_state_up": row.admin_state_up,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "action": row.action,
        "listener_id": row.listener_id,
        "redirect_pool_id": row.redirect_pool_id,
        "redirect_url": row.redirect_url,
        "redirect_prefix": row.redirect_prefix,
        "position": row.position,
        "rules": [{"id": i} for i in rules],
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "tags": tags,
        "redirect_http_code": row.redirect_http_code,
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    rules = ids_by(conn, t.l7rule, "l7policy_id", ids)
    tags = tags_for(conn, ids)
    return [render(r, rules[r.id], tags[r.id]) for r in rows]


def load_view(conn: Connection, policy_id: str) -> dict[str, Any]:
    return render_many(conn, [common.get_row(conn, t.l7policy, policy_id, LABEL)])[0]


# argument rules ---------------------------------------------------------------------------------
def sanitize(body: dict[str, Any], create: bool) -> dict[str, Any]:
    """Upstream's ``sanitize_l7policy_api_args``: make action and targets consistent."""
    out = dict(body)
    if "action" in out:
        action = out["action"]
        if action == "REJECT":
            out.update(redirect_url=None, redirect_pool_id=None)
        elif action == "REDIRECT_TO_URL":
            if not out.get("redirect_url"):
                raise BadRequest("Invalid L7 Policy arguments: redirect_url must not be None")
            out["redirect_pool_id"] = None
        elif action == "REDIRECT_TO_POOL":
            if not out.get("redirect_pool_id"):
                raise BadRequest("Invalid L7 Policy arguments: redirect_pool_id or "
                                 "redirect_pool must not be None")
            out["redirect_url"] = None
        elif action == "REDIRECT_PREFIX":
            if not out.get("redirect_prefix"):
                raise BadRequest("Invalid L7 Policy arguments: redirect_prefix must not be None")
        else:
            raise BadRequest(f"Invalid L7 Policy action specified: {action}")
    if out.get("redirect_pool_id") and (out.get("redirect_url") or out.get("redirect_prefix")):
        raise BadRequest("Invalid L7 Policy arguments: Cannot specify redirect_pool_id and "
                         "redirect_url or redirect_prefix at the same time")
    if out.get("redirect_pool_id"):
        out.update(action="REDIRECT_TO_POOL", redirect_url=None, redirect_prefix=None)
    if out.get("redirect_url"):
        out.update(action="REDIRECT_TO_URL", redirect_pool_id=None, redirect_prefix=None)
    if out.get("redirect_prefix"):
        out.update(action="REDIRECT_PREFIX", redirect_pool_id=None, redirect_url=None)
    if create and "action" not in out:
        raise BadRequest("Invalid L7 Policy action specified: None")
    if not out:
        raise BadRequest("Invalid L7 Policy arguments: Invalid update options")
    return out


def settle_targets(values: dict[str, Any]) -> dict[str, Any]:
    """Clear the targets the final action does not use; default the redirect code."""
    action = values["action"]
    for key in TARGETS:
        if key != ACTION_TARGET.get(action):
            values[key] = None
    if action in URL_ACTIONS:
        values["redirect_http_code"] = values.get("redirect_http_code") or DEFAULT_REDIRECT_CODE
    else:
        values["redirect_http_code"] = None
    return values


def check_provider(lb: Row[Any], listener: Row[Any]) -> None:
    """The amphora provider only runs L7 policies on HTTP and TERMINATED_HTTPS listeners."""
    if c.is_amphora_provider(lb.provider) and listener.protocol not in L7_LISTENER_PROTOCOLS:
        raise provider_unsupported_option(
            "amphora", f"{listener.protocol} protocol listeners do not support L7 policies")


def check_redirect_pool(conn: Connection, listener: Row[Any], pool_id: str) -> None:
    """The pool must exist on the listener's load balancer and speak a compatible protocol."""
    pool = conn.execute(select(t.pool).where(t.pool.c.id == pool_id)).first()
    if pool is None or pool.load_balancer_id != listener.load_balancer_id \
            or pool.provisioning_status == c.DELETED:
        raise NotFound("Pool", pool_id)
    if pool.protocol not in c.VALID_LISTENER_POOL_PROTOCOLS.get(listener.protocol, ()):
        raise ValidationFailure(f"The pool protocol '{pool.protocol}' is invalid while the "
                                f"listener protocol is '{listener.protocol}'.")


def prepare_policy(conn: Connection | None, listener: Row[Any], body: dict[str, Any]) \
        -> dict[str, Any]:
    """Validate a parsed create body; return the column values (without position).

    ``conn`` None skips the redirect-pool lookup (the graph create resolves pools itself).
    """
    if listener.protocol == "PROMETHEUS":
        raise BadRequest("Protocol PROMETHEUS listeners cannot have child objects.")
    args = sanitize({k: v for k, v in body.items()
                     if k in ("action", *TARGETS) and (k == "action" or v is not None)},
                    create=True)
    values = {"action": args["action"], **{k: args.get(k) for k in TARGETS},
              "redirect_http_code": body.get("redirect_http_code"),
              "name": body.get("name"), "description": body.get("description"),
              "admin_state_up": bool(body.get("admin_state_up"))}
    settle_targets(values)
    if conn is not None and values["redirect_pool_id"]:
        check_redirect_pool(conn, listener, values["redirect_pool_id"])
    return values


def place(conn: Connection, listener_id: str, policy_id: str, position: int | None) -> int:
    """Renumber the listener's policies 1…N with ``policy_id`` at ``position`` (None = last);
    return its place. A policy not stored yet is only made room for: rows that keep their
    position are not written (``updated_at`` moves with every write)."""
    rows = list(conn.execute(
        select(t.l7policy.c.id, t.l7policy.c.position)
        .where(t.l7policy.c.listener_id == listener_id)
        .order_by(t.l7policy.c.position, t.l7policy.c.created_at, t.l7policy.c.id)))
    current = {r.id: r.position for r in rows}
    order = [r.id for r in rows if r.id != policy_id]
    index = len(order) if position is None else min(position - 1, len(order))
    order.insert(index, policy_id)
    for pos, pid in enumerate(order, start=1):
        if pid in current and current[pid] != pos:
            conn.execute(update(t.l7policy).where(t.l7policy.c.id == pid).values(position=pos))
    return index + 1


def insert_policy(conn: Connection, values: dict[str, Any], listener_id: str, project_id: str,
                  now: datetime, position: int | None, tags: list[str] | None,
                  rules: list[dict[str, Any]] | None = None, policy_id: str | None = None) -> str:
    """Store a prepared policy (``PENDING_CREATE``) at ``position`` with its prepared rules.

    ``rules`` are ``{"values": l7rules.prepare_rule(...), "tags": [...]}`` dicts.
    """
    policy_id = policy_id or common.new_id()
    conn.execute(t.l7policy.insert().values(
        id=policy_id, project_id=project_id, listener_id=listener_id,
        provisioning_status=c.PENDING_CREATE, operating_status=c.OFFLINE,
        position=place(conn, listener_id, policy_id, position), created_at=now, **values))
    add_tags(conn, policy_id, tags)
    for i, rule in enumerate(rules or []):
        # a microsecond apart so the rules list keeps the request's order
        l7rules.insert_rule(conn, rule["values"], policy_id, project_id,
                            now + timedelta(microseconds=i), rule["tags"])
    return policy_id


def lock_listener_parents(conn: Connection, listener: Row[Any]) -> Row[Any]:
    """§6.3 for policies: LB ACTIVE, then LB and the listener PENDING_UPDATE."""
    lb = common.lock_lb(conn, listener.load_balancer_id)
    common.require_lb_mutable(lb)
    common.mark_lb_changed(conn, lb.id)
    common.set_status(conn, t.listener, [listener.id], c.PENDING_UPDATE)
    return lb


def _listener(conn: Connection, listener_id: str) -> Row[Any]:
    return common.get_row(conn, t.listener, listener_id, "Listener")


def _lb(conn: Connection, listener: Row[Any]) -> Row[Any]:
    return common.get_row(conn, t.load_balancer, listener.load_balancer_id, "Load Balancer")


# handlers ---------------------------------------------------------------------------------------
async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), RESOURCE, FIELDS, "create")
    state = req.app
    now = common.utcnow()
    policy_id = common.new_id()
    with state.engine.begin() as conn:
        listener = _listener(conn, body["listener_id"])
        lb = _lb(conn, listener)
        common.authorize(req, RESOURCE, "post", lb.project_id)
        values = prepare_policy(conn, listener, body)
        rule_bodies = body.get("rules") or []
        if len(rule_bodies) > c.MAX_L7_RULES_PER_POLICY:
            raise Conflict(f"Too many rules on L7 policy {policy_id}")
        rules = [{"values": l7rules.prepare_rule(r), "tags": r.get("tags")} for r in rule_bodies]
        common.check_quota(conn, req, lb.project_id, "l7policy")
        common.check_quota(conn, req, lb.project_id, "l7rule", len(rules))
        lb = lock_listener_parents(conn, listener)
        check_provider(lb, listener)
        insert_policy(conn, values, listener.id, lb.project_id, now, body.get("position"),
                      body.get("tags"), rules, policy_id)
        view = load_view(conn, policy_id)
    state.notify(lb.id)
    return Response(201, {RESOURCE: view})


def update_values(conn: Connection, listener: Row[Any], row: Row[Any], body: dict[str, Any]) \
        -> dict[str, Any]:
    """Merge an update body into the stored policy (upstream's PUT rules)."""
    args = {k: v for k, v in body.items() if k in ("action", *TARGETS)}
    if not body:
        raise BadRequest("Invalid L7 Policy arguments: Invalid update options")
    if args:
        args = sanitize(args, create=False)
    merged = {"action": row.action, **{k: getattr(row, k) for k in TARGETS},
              "redirect_http_code": row.redirect_http_code}
    merged.update(args)
    if "redirect_http_code" in body:
        merged["redirect_http_code"] = body["redirect_http_code"]
    needed = ACTION_TARGET.get(merged["action"])
    if needed and not merged[needed]:  # e.g. ``redirect_url: null`` on a URL policy
        raise BadRequest(f"Invalid L7 Policy arguments: {MISSING_TARGET[needed]} must not be "
                         "None")
    settle_targets(merged)
    if args.get("redirect_pool_id"):
        check_redirect_pool(conn, listener, args["redirect_pool_id"])
    values = {k: v for k, v in merged.items()
              if getattr(row, k) != v or k in body}
    for key in ("name", "description"):
        if key in body:
            values[key] = body[key]
    if "admin_state_up" in body:
        values["admin_state_up"] = bool(body["admin_state_up"])
    return values


def _target(conn: Connection, req: ApiRequest, policy_id: str, verb: str) \
        -> tuple[Row[Any], Row[Any]]:
    """The policy and its listener, once the caller may ``verb`` it."""
    row = common.get_row(conn, t.l7policy, policy_id, LABEL)
    listener = _listener(conn, row.listener_id)
    common.authorize(req, RESOURCE, verb, _lb(conn, listener).project_id)
    return row, listener


def _prepare_update(conn: Connection, req: ApiRequest, policy_id: str, body: dict[str, Any]) \
        -> Target:
    row, listener = _target(conn, req, policy_id, "put")
    values = update_values(conn, listener, row, body)
    return Target(row, lock_listener_parents(conn, listener), values)


def _after_update(conn: Connection, target: Target, body: dict[str, Any]) -> None:
    if body.get("position") is not None:
        place(conn, target.row.listener_id, target.row.id, body["position"])


def _prepare_delete(conn: Connection, req: ApiRequest, policy_id: str) -> Target:
    row, listener = _target(conn, req, policy_id, "delete")
    return Target(row, lock_listener_parents(conn, listener))


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=RESOURCE, label=LABEL, table=t.l7policy,
    path="/v2/lbaas/l7policies", fields=FIELDS, collection=COLLECTION, render_many=render_many,
    prepare_update=_prepare_update, after_update=_after_update, prepare_delete=_prepare_delete)
HANDLERS = crud.handlers(SPEC, create)
register = HANDLERS.register
OPENAPI = SPEC.openapi()
