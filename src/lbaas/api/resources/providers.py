"""Providers: the enabled-driver list, each driver's flavor/AZ capabilities and profile checks.

Key choice: the amphora driver's capability tables (names, descriptions, value types) are the
single source for two things — its capability endpoints and the validation of flavor and
availability zone profile data (upstream validates with a JSON schema that has
``additionalProperties: false``; the messages below are jsonschema's wording). The ``noop``
driver advertises upstream's noop lists and accepts any keys. This module also holds
``list_global``, the list helper for the project-less admin collections (profiles, flavors,
AZs, amphorae, quotas) whose primary key is not always ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, DateTime

from lbaas.api import common, listing
from lbaas.api.errors import ApiError, BadRequest, provider_unsupported_option
from lbaas.api.http import ApiRequest, Response, Router
from lbaas.domain import constants as c
from lbaas.store.listing import list_rows

RESOURCE = "provider"

# Drivers this build implements: "octavia" is upstream's alias of "amphora", "noop" ours of
# upstream's "noop_driver" (enabled whenever "noop_driver" is).
KNOWN_DRIVERS = c.AMPHORA_PROVIDERS | c.NOOP_PROVIDERS
ALIASES = {"noop": "noop_driver"}


def is_enabled(req: ApiRequest, provider: str) -> bool:
    enabled = req.app.settings.api.enabled_provider_drivers
    return provider in enabled or ALIASES.get(provider) in enabled


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    kind: str  # JSON-schema type: string | boolean | array
    choices: tuple[str, ...] = ()


FLAVOR_CAPABILITIES = (
    Capability("loadbalancer_topology",
               "The load balancer topology. One of: SINGLE - One amphora per load balancer. "
               "ACTIVE_STANDBY - Two amphora per load balancer.", "string", c.TOPOLOGIES),
    Capability("compute_flavor", "The compute driver flavor ID.", "string"),
    Capability("amp_image_tag", "The amphora image tag.", "string"),
    Capability("sriov_vip", "When true, the VIP port will be created using an SR-IOV VF port.",
               "boolean"),
    Capability("allow_member_sriov", "When true, users can request a member port be SR-IOV "
               "enabled at member creation time.", "boolean"),
)

AZ_CAPABILITIES = (
    Capability("compute_zone", "The compute availability zone.", "string"),
    Capability("volume_zone", "The volume availability zone.", "string"),
    Capability("management_network", "The management network ID for the amphora.", "string"),
    Capability("valid_vip_networks", "List of network IDs that are allowed for VIP use. This "
               "overrides/replaces the list of allowed networks configured in `octavia.conf`.",
               "array"),
)

# upstream's noop provider driver: what it advertises (it validates nothing)
NOOP_FLAVOR_CAPABILITIES = (
    Capability("amp_image_tag", "The glance image tag to use for this load balancer.", "string"),
)
NOOP_AZ_CAPABILITIES = (
    Capability("compute_zone", "The compute availability zone to use for this loadbalancer.",
               "string"),
    Capability("volume_zone", "The volume availability zone to use for this loadbalancer.",
               "string"),
)

_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "boolean": bool, "array": list, "object": dict,
}


class ProviderNotFound(ApiError):
    status = 501

    def __init__(self, provider: str) -> None:
        super().__init__(f"Provider '{provider}' was not found.")


def driver_for(req: ApiRequest, provider: str) -> str:
    """The driver serving ``provider``: 400 when not enabled, 501 when no such driver."""
    if not is_enabled(req, provider):
        raise BadRequest(f"Provider '{provider}' is not enabled.")
    if provider not in KNOWN_DRIVERS:
        raise ProviderNotFound(provider)
    return "amphora" if c.is_amphora_provider(provider) else "noop_driver"


def parse_profile_data(raw: str, option: str) -> Any:
    """Profile data is a JSON document inside a string; unparsable => 400 invalid option."""
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(f"{raw} is not a valid option for {option}") from None


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string" and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES[kind])


def schema_error(data: Any, capabilities: Sequence[Capability] | None) -> str | None:
    """jsonschema's message for the first violation, or None; ``None`` schema = any keys."""
    if not isinstance(data, dict):
        return f"{data!r} is not of type 'object'"
    if capabilities is None:
        return None
    known = {cap.name: cap for cap in capabilities}
    extras = [k for k in data if k not in known]
    if extras:
        verb = "was" if len(extras) == 1 else "were"
        names = ", ".join(repr(k) for k in extras)
        return f"Additional properties are not allowed ({names} {verb} unexpected)"
    for key, value in data.items():
        cap = known[key]
        if not _is_type(value, cap.kind):
            return f"{key} {value!r} is not of type '{cap.kind}'"
        if cap.choices and value not in cap.choices:
            return f"{key} {value!r} is not one of {list(cap.choices)!r}"
    return None


def _validate(req: ApiRequest, provider: str, data: Any,
              capabilities: Sequence[Capability]) -> None:
    driver = driver_for(req, provider)
    # the noop driver accepts any keys, as upstream's; it still needs an object
    error = schema_error(data, capabilities if driver == "amphora" else None)
    if error is not None:
        raise provider_unsupported_option(provider, error)


def validate_flavor_data(req: ApiRequest, provider: str, data: Any) -> None:
    _validate(req, provider, data, FLAVOR_CAPABILITIES)


def validate_az_data(req: ApiRequest, provider: str, data: Any) -> None:
    _validate(req, provider, data, AZ_CAPABILITIES)


def list_global(req: ApiRequest, coll: listing.Collection,
                render_many: Callable[[Connection, list[Any]], list[dict[str, Any]]], *,
                key: str = "id", where: Sequence[ColumnElement[bool]] = (),
                filters: dict[str, Any] | None = None, select_fields: bool = True) -> Response:
    """A paginated list of a collection that has no per-project scoping of its own.

    ``key`` is the primary key (the marker and the last sort tie-breaker); ``filters``
    (column -> value) replace whatever the query string asked for those columns;
    ``select_fields`` False ignores ``fields`` (upstream's quota list).
    """
    state = req.app
    with state.engine.connect() as conn:
        q = listing.build_query(conn, req, coll, state.settings.api.pagination_max_limit)
        _coerce_datetimes(coll, q.filters)
        q.filters.update(filters or {})
        q.where.extend(where)
        if key not in [col for col, _ in q.sort]:
            q.sort.append((key, q.sort[0][1] if q.sort else "asc"))
        rows = list_rows(conn, coll.table, q)
        items = render_many(conn, rows)
    wanted = listing.requested_fields(req) if select_fields else None
    return Response(200, {
        coll.plural: [listing.select_fields(i, wanted) for i in items],
        coll.links_key: listing.links(req, q, rows, state.settings.api.api_base_uri, key=key),
    })


def _coerce_datetimes(coll: listing.Collection, filters: dict[str, Any]) -> None:
    """Timestamp filters as datetimes (PostgreSQL will not compare a timestamp with text)."""
    for column, value in filters.items():
        if isinstance(value, str) and isinstance(coll.table.c[column].type, DateTime):
            try:
                filters[column] = datetime.fromisoformat(value)
            except ValueError:
                raise BadRequest(listing.BAD_FILTER) from None


def _capability_list(req: ApiRequest, capabilities: Sequence[Capability]) \
        -> list[dict[str, Any]]:
    name = req.param("name")
    description = req.param("description")
    out = [{"name": cap.name, "description": cap.description} for cap in capabilities
           if (not name or cap.name == name) and (not description
                                                    or cap.description == description)]
    wanted = listing.requested_fields(req)
    return [listing.select_fields(i, wanted) for i in out]


async def get_all(req: ApiRequest) -> Response:
    """List the enabled provider drivers."""
    common.authorize(req, RESOURCE, "get_all", req.context.project_id)
    drivers = req.app.settings.api.enabled_provider_drivers
    wanted = listing.requested_fields(req)
    providers = [listing.select_fields({"name": name, "description": text}, wanted)
                 for name, text in drivers.items()]
    return Response(200, {"providers": providers})


async def flavor_capabilities(req: ApiRequest) -> Response:
    """List the flavor capabilities of a provider."""
    common.authorize(req, "provider-flavor", "get_all", req.context.project_id)
    amphora = driver_for(req, req.path_params["provider"]) == "amphora"
    return Response(200, {"flavor_capabilities": _capability_list(
        req, FLAVOR_CAPABILITIES if amphora else NOOP_FLAVOR_CAPABILITIES)})


async def availability_zone_capabilities(req: ApiRequest) -> Response:
    """List the availability zone capabilities of a provider."""
    common.authorize(req, "provider-availability-zone", "get_all", req.context.project_id)
    amphora = driver_for(req, req.path_params["provider"]) == "amphora"
    return Response(200, {"availability_zone_capabilities": _capability_list(
        req, AZ_CAPABILITIES if amphora else NOOP_AZ_CAPABILITIES)})


def register(router: Router) -> None:
    base = "/v2/lbaas/providers"
    router.add("GET", base, get_all)
    router.add("GET", base + "/{provider}/flavor_capabilities", flavor_capabilities)
    router.add("GET", base + "/{provider}/availability_zone_capabilities",
               availability_zone_capabilities)
