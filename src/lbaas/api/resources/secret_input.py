"""Barbican request bodies: payload decoding and field checks, and Barbican's error body.

Key choice: payloads are decoded to bytes here (text/plain as UTF-8, everything else from
base64, Barbican's only encoding) so the store only ever sees bytes; nothing here logs them.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from lbaas.api import common
from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest

MAX_INT32 = 2**31 - 1  # Barbican's integer columns (bit_length)
MAX_PAYLOAD = 20000  # Barbican's max_allowed_secret_in_bytes
CONTENT_TYPES = ("text/plain", "application/octet-stream", "application/pkcs8",
                 "application/pkix-cert")
TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 406: "Not Acceptable",
          409: "Conflict", 413: "Request Entity Too Large"}


class BarbicanError(ApiError):
    def body(self) -> dict[str, Any]:
        title = TITLES.get(self.status, "Error")
        return {"code": self.status, "title": title, "description": self.faultstring}


def fail(message: str) -> BarbicanError:
    return BarbicanError(message, 400)


def json_body(req: ApiRequest) -> dict[str, Any]:
    try:
        body = req.json()
    except ApiError as exc:
        raise fail(exc.faultstring) from None
    if not isinstance(body, dict):
        raise fail("Provided object does not match schema: expected a JSON object.")
    return body


def decode_payload(body: dict[str, Any]) -> tuple[bytes, str]:
    payload = body.get("payload")
    content_type = body.get("payload_content_type")
    encoding = body.get("payload_content_encoding")
    if not isinstance(payload, str) or not payload.strip():
        raise fail("If 'payload' specified, must be non empty")
    if not isinstance(content_type, str):
        raise fail("If 'payload' is supplied, 'payload_content_type' must also be supplied.")
    content_type = content_type.replace(" ", "").lower()
    if content_type.split(";")[0] not in CONTENT_TYPES:
        raise fail("Provided object does not match schema 'Secret': payload_content_type "
                   "is not one of the supported types.")
    if content_type.startswith("text/plain"):
        if encoding:
            raise fail("payload_content_encoding is not allowed for text/plain payloads.")
        data = payload.encode("utf-8")
    else:
        if (encoding or "").lower() != "base64":
            raise fail("Invalid payload for payload_content_encoding: it must be 'base64' "
                       f"for {content_type}.")
        try:
            # `base64` wraps its output at 76 columns; Barbican accepts that.
            data = base64.b64decode("".join(payload.split()).encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise fail("Invalid payload for payload_content_encoding") from None
    if len(data) > MAX_PAYLOAD:
        raise BarbicanError("Could not add secret data as it was too large", 413)
    return data, content_type


def optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= MAX_INT32):
        raise fail(f"Provided object does not match schema 'Secret': {key} must be an "
                   f"integer from 0 to {MAX_INT32}.")
    return value


def text_field(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise fail(f"Provided object does not match schema 'Secret': {key} must be a string "
                   "of at most 255 characters.")
    return value


def parse_expiration(body: dict[str, Any]) -> datetime | None:
    value = body.get("expiration")
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise fail("Invalid date for 'expiration'") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if when <= common.utcnow():
        raise fail("'expiration' is before current time")
    return when
