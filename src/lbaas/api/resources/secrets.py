"""The Barbican v1 subset that ``openstack secret ...`` and Octavia's TLS cookbook use.

Mounted under ``/key-manager`` (clouds.yaml's ``key_manager_endpoint_override``): secrets with
text or base64 payloads, their payload GET, and certificate/generic/rsa containers. Bodies and
errors follow Barbican (``{"code", "title", "description"}``). Secrets belong to the caller's
project (the token's in keystone mode, ``X-Project-Id`` or the default project in noauth) and
other projects' are 404. Roles follow Barbican's default policy (``secret_policy``): member or
admin to create, delete and decrypt, reader for metadata only. Payloads are sealed by
``store.secrets``; only the payload GET ever returns one, and nothing here logs a payload.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import delete, func, select, update

from lbaas.api import common
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources.secret_input import (
    BarbicanError,
    decode_payload,
    fail,
    json_body,
    optional_int,
    parse_expiration,
    text_field,
)
from lbaas.api.resources.secret_policy import Access, enforce
from lbaas.store import secrets as store
from lbaas.store import tables as t

PREFIX = "/key-manager"
API = PREFIX + "/v1"
SECRET_TYPES = ("symmetric", "public", "private", "passphrase", "certificate", "opaque")
CONTAINER_SECRETS = {
    "certificate": ("certificate", "private_key", "private_key_passphrase", "intermediates"),
    "rsa": ("public_key", "private_key", "private_key_passphrase"),
    "generic": None,
}


def _version(req: ApiRequest) -> dict[str, Any]:
    return {"id": "v1", "status": "CURRENT", "min_version": "1.0", "max_version": "1.1",
            "links": [{"rel": "self", "href": f"{req.base_url}{API}/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.key-manager-v1+json"}]}


async def versions(req: ApiRequest) -> Response:
    return Response(300, {"versions": {"values": [_version(req)]}})


async def v1_index(req: ApiRequest) -> Response:
    return Response(200, {"version": _version(req)})


def caller_project(req: ApiRequest) -> str:
    project = req.context.project_id
    if not project:
        raise BarbicanError("No project id found in the request.", 403)
    return project


def ref_url(req: ApiRequest, kind: str, ident: str) -> str:
    return f"{req.base_url}{API}/{kind}/{ident}"


def stamp(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def render_secret(req: ApiRequest, row: Any) -> dict[str, Any]:
    out = {"status": "ACTIVE", "created": stamp(row.created_at),
           "updated": stamp(row.updated_at or row.created_at),
           "expiration": stamp(row.expiration), "algorithm": row.algorithm,
           "bit_length": row.bit_length, "mode": row.mode, "name": row.name,
           "secret_ref": ref_url(req, "secrets", row.id),
           "secret_type": row.secret_type or "opaque", "creator_id": row.creator_id}
    if row.payload:
        out["content_types"] = {"default": row.content_type}
    return out


async def create_secret(req: ApiRequest) -> Response:
    enforce(req, Access.WRITE, "Secret creation")
    body = json_body(req)
    project = caller_project(req)
    secret_type = body.get("secret_type") or "opaque"
    if secret_type not in SECRET_TYPES:
        raise fail("Provided object does not match schema 'Secret': secret_type is not one "
                   "of " + ", ".join(SECRET_TYPES))
    payload, content_type = (None, None)
    if "payload" in body:
        payload, content_type = decode_payload(body)
    values = {"name": text_field(body, "name"), "algorithm": text_field(body, "algorithm"),
              "mode": text_field(body, "mode"), "bit_length": optional_int(body, "bit_length"),
              "expiration": parse_expiration(body)}
    box = store.secret_box(req.app.settings.shared_path)
    ident = common.new_id()
    with req.app.engine.begin() as conn:
        conn.execute(t.secret.insert().values(
            id=ident, project_id=project, secret_type=secret_type, content_type=content_type,
            payload=box.seal(payload) if payload is not None else None,
            creator_id=req.context.user_id, created_at=common.utcnow(), **values))
    ref = ref_url(req, "secrets", ident)
    return Response(201, {"secret_ref": ref}, [(b"location", ref.encode())])


MAX_OFFSET = 2**63 - 1  # what a database's OFFSET holds


def page_params(req: ApiRequest) -> tuple[int, int]:
    try:
        limit = int(req.param("limit") or 10)
        offset = int(req.param("offset") or 0)
    except ValueError:
        raise fail("limit and offset must be integers") from None
    if offset > MAX_OFFSET:
        raise fail(f"offset must be at most {MAX_OFFSET}")
    return max(0, min(limit, 100)), max(offset, 0)


def page_links(req: ApiRequest, kind: str, total: int, limit: int, offset: int) -> dict[str, str]:
    out = {}
    extra = "".join(f"&{k}={v}" for k, v in req.query if k not in ("limit", "offset"))
    if offset + limit < total:
        out["next"] = f"{req.base_url}{API}/{kind}?limit={limit}&offset={offset + limit}{extra}"
    if offset > 0:
        out["previous"] = (f"{req.base_url}{API}/{kind}?limit={limit}"
                           f"&offset={max(offset - limit, 0)}{extra}")
    return out


async def list_secrets(req: ApiRequest) -> Response:
    enforce(req, Access.READ, "Secret(s) retrieval")
    limit, offset = page_params(req)
    cond = [t.secret.c.project_id == caller_project(req)]
    for param, column in (("name", t.secret.c.name), ("secret_type", t.secret.c.secret_type),
                          ("alg", t.secret.c.algorithm), ("mode", t.secret.c.mode)):
        if req.param(param):
            cond.append(column == req.param(param))
    with req.app.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t.secret).where(*cond)).scalar()
        rows = conn.execute(select(t.secret).where(*cond).order_by(
            t.secret.c.created_at, t.secret.c.id).limit(limit).offset(offset)).all()
    body = {"secrets": [render_secret(req, r) for r in rows], "total": total or 0}
    body.update(page_links(req, "secrets", total or 0, limit, offset))
    return Response(200, body)


def _secret(req: ApiRequest, conn: Any) -> Any:
    try:
        return store.secret_row(conn, caller_project(req), req.path_params["id"])
    except store.SecretUnavailable:
        raise BarbicanError("Not Found. Sorry but your secret is in another castle.",
                            404) from None


def _payload_response(req: ApiRequest, row: Any) -> Response:
    if not row.payload:
        raise BarbicanError("Not Found. Sorry but your secret has no payload.", 404)
    try:
        data = store.secret_box(req.app.settings.shared_path).open(row.payload)
    except store.SecretUnavailable:
        raise BarbicanError("The secret cannot be decrypted by this server.", 500) from None
    content_type = (row.content_type or "application/octet-stream").encode()
    return Response(200, raw=data, headers=[(b"content-type", content_type),
                                            (b"content-length", str(len(data)).encode())])


def _wants_json(req: ApiRequest) -> bool:
    accept = (req.headers.get("accept") or "application/json").lower()
    return "json" in accept or "*/*" in accept


async def show_secret(req: ApiRequest) -> Response:
    # Barbican's older clients fetch the payload from the secret URL with a non-JSON Accept.
    if _wants_json(req):
        enforce(req, Access.READ, "Secret retrieval")
    else:
        enforce(req, Access.DECRYPT, "Secret payload retrieval")
    with req.app.engine.connect() as conn:
        row = _secret(req, conn)
    return Response(200, render_secret(req, row)) if _wants_json(req) else \
        _payload_response(req, row)


async def show_payload(req: ApiRequest) -> Response:
    enforce(req, Access.DECRYPT, "Secret payload retrieval")
    with req.app.engine.connect() as conn:
        row = _secret(req, conn)
    return _payload_response(req, row)


async def secret_metadata(req: ApiRequest) -> Response:
    enforce(req, Access.READ, "Secret metadata retrieval")
    with req.app.engine.connect() as conn:
        _secret(req, conn)
    return Response(200, {"metadata": {}})


async def upload_payload(req: ApiRequest) -> Response:
    """Barbican's two-step store: PUT the payload of a secret created without one."""
    enforce(req, Access.WRITE, "Secret update")
    content_type = (req.headers.get("content-type") or "").replace(" ", "").lower()
    raw = req.body_bytes
    body: dict[str, Any] = {"payload_content_type": content_type}
    if content_type.startswith("text/plain"):
        body["payload"] = raw.decode("utf-8", "replace")
    elif (req.headers.get("content-encoding") or "").lower() == "base64":
        body.update(payload=raw.decode("ascii", "replace"), payload_content_encoding="base64")
    else:  # the bytes themselves
        body.update(payload=base64.b64encode(raw).decode(), payload_content_encoding="base64")
    payload, content_type = decode_payload(body)
    box = store.secret_box(req.app.settings.shared_path)
    with req.app.engine.begin() as conn:
        row = _secret(req, conn)
        if row.payload:
            raise BarbicanError("Secret already has data, cannot modify it.", 409)
        conn.execute(update(t.secret).where(t.secret.c.id == row.id).values(
            payload=box.seal(payload), content_type=content_type, updated_at=common.utcnow()))
    return Response(204)


async def delete_secret(req: ApiRequest) -> Response:
    enforce(req, Access.WRITE, "Secret deletion")
    with req.app.engine.begin() as conn:
        row = _secret(req, conn)
        conn.execute(delete(t.secret).where(t.secret.c.id == row.id))
    return Response(204)


def register(router: Router) -> None:
    from lbaas.api.resources import secret_containers

    router.add("GET", PREFIX, versions)
    router.add("GET", API, v1_index)
    router.add("POST", f"{API}/secrets", create_secret)
    router.add("GET", f"{API}/secrets", list_secrets)
    router.add("GET", f"{API}/secrets/{{id}}", show_secret)
    router.add("DELETE", f"{API}/secrets/{{id}}", delete_secret)
    router.add("PUT", f"{API}/secrets/{{id}}", upload_payload)
    router.add("GET", f"{API}/secrets/{{id}}/payload", show_payload)
    router.add("GET", f"{API}/secrets/{{id}}/metadata", secret_metadata)
    secret_containers.register(router)
