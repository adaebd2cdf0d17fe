"""Reading Neutron request bodies: the envelope, the owner, and the common value validators.

The checks run in neutron-lib's order (``prepare_request_body``): envelope, owner
(``project_id``/``tenant_id`` agree; only admins name another project), unknown attributes,
attributes that exist but may not be set by this verb, then the values. Messages and error types
are Neutron's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from lbaas.api.errors import ApiError
from lbaas.api.http import ApiRequest
from lbaas.api.resources.networking.access import is_admin
from lbaas.api.resources.networking.errors import bad_request, invalid_attr, invalid_input

MAX_NAME = 255
OWNER_ATTRS = frozenset({"project_id", "tenant_id"})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def read_body(req: ApiRequest, key: str, known: frozenset[str], settable: frozenset[str],
              create: bool) -> dict[str, Any]:
    """The ``key`` object of the body; ``known`` are the resource's attributes, ``settable``
    those this verb may set."""
    try:
        data = req.json()
    except ApiError:
        raise bad_request("Resource body required") from None
    if not data:
        raise bad_request("Resource body required")
    if not isinstance(data, dict) or data.get(key) is None:
        raise bad_request(f"Unable to find '{key}' in request body")
    body = data[key]
    if not isinstance(body, dict):
        raise bad_request(f"Object '{key}' contains invalid data")
    _check_owner(req, body)
    unknown = sorted(set(body) - known - OWNER_ATTRS)
    if unknown:
        raise bad_request("Unrecognized attribute(s) '" + ", ".join(unknown) + "'")
    for attr in sorted(body):
        if attr in settable or (create and attr in OWNER_ATTRS):
            continue
        raise bad_request(f"Attribute '{attr}' not allowed in POST" if create
                          else f"Cannot update read-only attribute {attr}")
    return dict(body)


def _check_owner(req: ApiRequest, body: dict[str, Any]) -> None:
    project, tenant = body.get("project_id"), body.get("tenant_id")
    if "project_id" in body and "tenant_id" in body and project != tenant:
        raise bad_request("'project_id' and 'tenant_id' do not match")
    wanted = project if "project_id" in body else tenant
    if wanted is not None and not isinstance(wanted, str):
        raise invalid_attr("project_id", f"'{wanted}' is not a valid string")
    if ("project_id" in body or "tenant_id" in body) and wanted != req.context.project_id \
            and not is_admin(req):
        raise bad_request("Specifying 'project_id' other than the authenticated project in "
                          "request is not allowed for the current user.")


def owner(req: ApiRequest, body: dict[str, Any]) -> str | None:
    """The project a new object belongs to (checked by ``read_body``)."""
    wanted = body.get("project_id", body.get("tenant_id"))
    return wanted or req.context.project_id


def string(body: dict[str, Any], attr: str, default: str | None = "",
           max_len: int = MAX_NAME) -> str | None:
    value = body.get(attr, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str):
        raise invalid_attr(attr, f"'{value}' is not a valid string")
    if len(value) > max_len:
        raise invalid_attr(attr, f"'{value}' exceeds maximum length of {max_len}")
    return value


def as_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise invalid_input(f"'{raw}' cannot be converted to boolean")


def boolean(body: dict[str, Any], attr: str, default: bool) -> bool:
    value = body.get(attr, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        return as_bool(str(value))
    raise invalid_input(f"'{value}' cannot be converted to boolean")


def parse_ip(attr: str, raw: Any) -> Address:
    if not isinstance(raw, str):
        raise invalid_attr(attr, f"'{raw}' is not a valid IP address")
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise invalid_attr(attr, f"'{raw}' is not a valid IP address") from None


def uuid_string(body: dict[str, Any], attr: str) -> str:
    """A required id attribute (Neutron validates ``type:uuid``; ids here are UUIDs too)."""
    value = body.get(attr)
    if value is None:
        raise bad_request(f"Failed to parse request. Required attribute '{attr}' not specified")
    if not isinstance(value, str):
        raise invalid_attr(attr, f"'{value}' is not a valid UUID")
    return value


def unique_list(attr: str, value: Any) -> list[Any]:
    """neutron-lib's list checks: a list, without duplicates."""
    if not isinstance(value, list):
        raise invalid_attr(attr, f"'{value}' is not a list")
    seen: list[Any] = []
    for item in value:
        if item in seen:
            raise invalid_attr(attr, f"Duplicate items in the list: '{item}'")
        seen.append(item)
    return value
