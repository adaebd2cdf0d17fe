"""L7 rules under ``/v2/lbaas/l7policies/{l7policy_id}/rules`` (envelope ``rule``/``rules``).

``rule_error`` is upstream's per-type validation table (§9.7) as a pure function so the
policy create (``rules`` in the body) and the graph create reuse it with ``prepare_rule`` /
``insert_rule``. Messages keep Octavia's nesting: ``Error parsing L7Rule: Invalid L7 Rule: …``.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select

from lbaas.api import common, listing
from lbaas.api.errors import BadRequest, Conflict, ImmutableObject, InvalidInput, NotFound
from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources import crud
from lbaas.api.resources.spec import Parent, Resource, Target
from lbaas.api.schema import (
    ADMIN_STATE_UP,
    PROJECT_ID,
    TAGS,
    Bool,
    Enum,
    Field,
    String,
    parse_envelope,
)
from lbaas.domain import constants as c
from lbaas.render import validate
from lbaas.store import tables as t
from lbaas.store.listing import add_tags, tags_for

RESOURCE = "l7rule"
ENVELOPE = "rule"
LABEL = "L7 Rule"
POLICY_LABEL = "L7Policy"  # upstream's spelling on the rules path and in 409s

# Octavia's character classes (note: "+-." inside a class is the range '+'..'.').
HEADER_NAME = re.compile(r"\A[a-zA-Z0-9!#$%&'*+-.^_`|~]+\Z")
COOKIE_VALUE = re.compile(r"\A[a-zA-Z0-9!#$%&'()*+-./:<=>?@[\]^_`{|}~]+\Z")
HEADER_VALUE = re.compile(r"\A[a-zA-Z0-9!\"#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]+\Z")
QUOTED_HEADER_VALUE = re.compile(r"\A\"[a-zA-Z0-9 \t!\"#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]*\"\Z")
DN_FIELD = re.compile(r"\A[a-zA-Z][A-Za-z0-9-]*\Z")
KEYLESS_TYPES = frozenset({"HOST_NAME", "PATH", "FILE_TYPE"})
PLAIN_COMPARES = frozenset({"STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"})


def _no_newlines(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise InvalidInput(name, value, "Value must not contain carriage return or line feed "
                           "characters")
    return value


FIELDS = (
    ADMIN_STATE_UP, PROJECT_ID, TAGS,
    Field("type", Enum(c.L7_RULE_TYPES), required=True),
    Field("compare_type", Enum(c.L7_COMPARE_TYPES), required=True),
    Field("key", String(255), check=_no_newlines),
    Field("value", String(255), required=True, check=_no_newlines),
    Field("invert", Bool(), default=False),
)

COLLECTION = listing.Collection(t.l7rule, "rules", "rules_links")


# validation -------------------------------------------------------------------------------------
def _regex_error(value: str) -> str | None:
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not errors
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error as exc:
        return f"Unable to parse regular expression: {exc}"
    return None


def _header_value_ok(value: str) -> bool:
    return bool(HEADER_VALUE.match(value) or QUOTED_HEADER_VALUE.match(value))


def _ssl_error(rtype: str, compare: str | None, key: str | None, value: str) -> str | None:
    if rtype == "SSL_DN_FIELD":
        if compare == "REGEX" and (err := _regex_error(value)):
            return err
        if not key:
            return f"Invalid L7 Rule: L7rule type {rtype} needs to specify a key and a value."
        if not DN_FIELD.match(key):
            return "Invalid L7 Rule: Invalid L7rule distinguished name field."
        return None
    if key:
        return f'Invalid L7 Rule: L7rule type {rtype} does not use the "key" field.'
    if rtype == "SSL_CONN_HAS_CERT" and value.lower() != "true":
        return f"Invalid L7 Rule: L7rule value {value} is not a boolean True string."
    if rtype == "SSL_VERIFY_RESULT" and not (value.isascii() and value.isdigit()):
        return f"Invalid L7 Rule: L7rule type {rtype} needs a int value, which is >= 0"
    if compare != "EQUAL_TO":
        return f"Invalid L7 Rule: L7rule type {rtype} only supports the EQUAL_TO compare type."
    return None


def rule_error(rtype: str | None, compare: str | None, key: str | None,
               value: str | None) -> str | None:
    """Why this rule is invalid (upstream's wording), or None."""
    if not value:
        return "Invalid L7 Rule: L7 rule type requires a value"
    bad_compare = "Invalid L7 Rule: invalid comparison type for rule type"
    if rtype in ("HEADER", "COOKIE"):
        if not key:
            return "Invalid L7 Rule: L7 rule type requires a key"
        if not HEADER_NAME.match(key):
            return "Invalid characters in key"
        if compare == "REGEX":
            return _regex_error(value)
        if compare not in PLAIN_COMPARES:
            return bad_compare
        if rtype == "HEADER":
            return None if _header_value_ok(value) else "Invalid characters in header value"
        return None if COOKIE_VALUE.match(value) else "Invalid characters in cookie value"
    if rtype in KEYLESS_TYPES:
        allowed = ("REGEX", "EQUAL_TO") if rtype == "FILE_TYPE" else (*PLAIN_COMPARES, "REGEX")
        if compare not in allowed:
            return bad_compare
        if compare == "REGEX":
            return _regex_error(value)
        return None if _header_value_ok(value) else "Invalid characters in comparison value"
    if rtype in ("SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD"):
        return _ssl_error(rtype, compare, key, value)
    return "Invalid L7 Rule: invalid rule type"


def check_rule(values: dict[str, Any]) -> None:
    """Octavia's rules, then the data plane's (PCRE2 for regexes, printable values, keys)."""
    rtype, compare, key, value = (values.get(k) for k in ("type", "compare_type", "key",
                                                         "value"))
    reason = rule_error(rtype, compare, key, value) or \
        validate.l7_rule_error(rtype, compare, key, value)
    if reason:
        raise BadRequest(f"Error parsing L7Rule: {reason}")


def prepare_rule(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a parsed create body; return the column values to store."""
    values = {
        "type": body["type"], "compare_type": body["compare_type"],
        "key": body.get("key"), "value": body["value"],
        "invert": bool(body.get("invert")), "admin_state_up": bool(body.get("admin_state_up")),
    }
    check_rule(values)
    if values["type"] in KEYLESS_TYPES:
        values["key"] = None
    return values


def insert_rule(conn: Connection, values: dict[str, Any], policy_id: str, project_id: str,
                now: datetime, tags: list[str] | None) -> str:
    rule_id = common.new_id()
    conn.execute(t.l7rule.insert().values(
        id=rule_id, project_id=project_id, l7policy_id=policy_id,
        provisioning_status=c.PENDING_CREATE, operating_status=c.OFFLINE, created_at=now,
        **values))
    add_tags(conn, rule_id, tags)
    return rule_id


def check_rule_count(conn: Connection, policy_id: str, adding: int = 1) -> None:
    have = conn.execute(select(func.count()).select_from(t.l7rule).where(
        t.l7rule.c.l7policy_id == policy_id)).scalar_one()
    if have + adding > c.MAX_L7_RULES_PER_POLICY:
        raise Conflict(f"Too many rules on L7 policy {policy_id}")


# rendering --------------------------------------------------------------------------------------
def render(row: Row[Any], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "compare_type": row.compare_type,
        "key": row.key,
        "value": row.value,
        "invert": row.invert,
        "provisioning_status": row.provisioning_status,
        "operating_status": row.operating_status,
        "created_at": common.iso(row.created_at),
        "updated_at": common.iso(row.updated_at),
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "admin_state_up": row.admin_state_up,
        "tags": tags,
    }


def render_many(conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
    tags = tags_for(conn, [r.id for r in rows])
    return [render(r, tags[r.id]) for r in rows]


# lookups and locking ----------------------------------------------------------------------------
def _policy(conn: Connection, policy_id: str) -> Row[Any]:
    return common.get_row(conn, t.l7policy, policy_id, POLICY_LABEL)


def _rule(conn: Connection, policy_id: str, rule_id: str) -> Row[Any]:
    row = common.get_row(conn, t.l7rule, rule_id, LABEL)
    if row.l7policy_id != policy_id:
        raise NotFound(LABEL, rule_id)
    return row


def _lb_of(conn: Connection, policy: Row[Any]) -> Row[Any]:
    listener = common.get_row(conn, t.listener, policy.listener_id, "Listener")
    return common.get_row(conn, t.load_balancer, listener.load_balancer_id, "Load Balancer")


def lock_policy_parents(conn: Connection, policy_id: str) -> Row[Any]:
    """§6.3 for rules: policy and LB ACTIVE, then LB, listener and policy PENDING_UPDATE."""
    policy = _policy(conn, policy_id)
    listener = common.get_row(conn, t.listener, policy.listener_id, "Listener")
    lb = common.lock_lb(conn, listener.load_balancer_id)
    policy = _policy(conn, policy_id)  # re-read under the LB lock
    if policy.provisioning_status != c.ACTIVE:
        raise ImmutableObject(POLICY_LABEL, policy_id)
    common.require_lb_mutable(lb)
    common.mark_lb_changed(conn, lb.id)
    common.set_status(conn, t.listener, [listener.id], c.PENDING_UPDATE)
    common.set_status(conn, t.l7policy, [policy_id], c.PENDING_UPDATE)
    return lb


def load_view(conn: Connection, rule_id: str) -> dict[str, Any]:
    return render_many(conn, [common.get_row(conn, t.l7rule, rule_id, LABEL)])[0]


# handlers ---------------------------------------------------------------------------------------
async def create(req: ApiRequest) -> Response:
    body = parse_envelope(req.json(), ENVELOPE, FIELDS, "create")
    policy_id = req.path_params["l7policy_id"]
    state = req.app
    values = prepare_rule(body)  # the rule is judged on its own, before the policy is loaded
    with state.engine.begin() as conn:
        policy = _policy(conn, policy_id)
        project_id = _lb_of(conn, policy).project_id
        common.authorize(req, RESOURCE, "post", project_id)
        check_rule_count(conn, policy_id)
        common.check_quota(conn, req, project_id, "l7rule")
        lb = lock_policy_parents(conn, policy_id)
        rule_id = insert_rule(conn, values, policy_id, project_id, common.utcnow(),
                              body.get("tags"))
        view = load_view(conn, rule_id)
    state.notify(lb.id)
    return Response(201, {ENVELOPE: view})


async def get_all(req: ApiRequest) -> Response:
    policy_id = req.path_params["l7policy_id"]
    with req.app.engine.connect() as conn:
        policy = _policy(conn, policy_id)
        project_id = _lb_of(conn, policy).project_id
    common.authorize(req, RESOURCE, "get_all", project_id)
    return common.list_response(req, COLLECTION, RESOURCE, render_many,
                                [t.l7rule.c.l7policy_id == policy_id])


def _find(conn: Connection, req: ApiRequest) -> Row[Any]:
    policy_id = req.path_params["l7policy_id"]
    _policy(conn, policy_id)
    return _rule(conn, policy_id, req.path_params["id"])


def merge_update(row: Row[Any], body: dict[str, Any]) -> dict[str, Any]:
    """The column values to write; the merged rule must pass the create validation."""
    merged = {k: getattr(row, k) for k in ("type", "compare_type", "key", "value")}
    merged.update({k: body[k] for k in merged if k in body})
    check_rule(merged)
    if merged["type"] in KEYLESS_TYPES:
        merged["key"] = None
    values = {k: v for k, v in merged.items() if k in body or k == "key"}
    for key in ("invert", "admin_state_up"):
        if key in body:
            values[key] = bool(body[key])  # null means false
    return values


def _target(conn: Connection, req: ApiRequest, rule_id: str, verb: str) -> Row[Any]:
    """The rule, once the caller may ``verb`` it."""
    policy_id = req.path_params["l7policy_id"]
    policy = _policy(conn, policy_id)
    row = _rule(conn, policy_id, rule_id)
    common.authorize(req, RESOURCE, verb, _lb_of(conn, policy).project_id)
    return row


def _prepare_update(conn: Connection, req: ApiRequest, rule_id: str, body: dict[str, Any]) \
        -> Target:
    row = _target(conn, req, rule_id, "put")
    values = merge_update(row, body)
    return Target(row, lock_policy_parents(conn, row.l7policy_id), values)


def _prepare_delete(conn: Connection, req: ApiRequest, rule_id: str) -> Target:
    row = _target(conn, req, rule_id, "delete")
    return Target(row, lock_policy_parents(conn, row.l7policy_id))


SPEC = Resource(
    module=__name__, policy=RESOURCE, envelope=ENVELOPE, label=LABEL, table=t.l7rule,
    path="/v2/lbaas/l7policies/{l7policy_id}/rules", fields=FIELDS, collection=COLLECTION,
    render_many=render_many, parent=Parent(t.l7policy, "l7policy_id", POLICY_LABEL),
    find=_find, prepare_update=_prepare_update, prepare_delete=_prepare_delete)
HANDLERS = crud.handlers(SPEC, create, get_all_=get_all)
register = HANDLERS.register
OPENAPI = SPEC.openapi()
