"""Provider, flavor and availability zone of a load balancer being created (upstream's
``_apply_flavor_and_az_to_lb_dict`` checks and messages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from lbaas.api.errors import BadRequest, ValidationFailure
from lbaas.api.http import ApiRequest
from lbaas.api.resources.providers import ALIASES, is_enabled
from lbaas.domain import constants as c
from lbaas.store import tables as t


def provider_of(req: ApiRequest, name: str | None) -> str:
    """The provider asked for (or the default), kept as named: "octavia" stays "octavia"."""
    provider = name or req.app.settings.api.default_provider_driver
    if not is_enabled(req, provider):
        raise BadRequest(f"Provider '{provider}' is not enabled.")
    return provider


def _same_driver(a: str, b: str) -> bool:
    return c.is_amphora_provider(a) == c.is_amphora_provider(b) and (
        c.is_amphora_provider(a) or ALIASES.get(a, a) == ALIASES.get(b, b))


def flavor_topology(conn: Connection, req: ApiRequest, body: dict[str, Any],
                     provider: str) -> tuple[str, str]:
    """Validate flavor and AZ; return (provider, topology)."""
    import json

    topology = req.app.settings.controller.loadbalancer_topology
    flavor_id = body.get("flavor_id")
    if flavor_id:
        flavor = conn.execute(select(t.flavor).where(t.flavor.c.id == flavor_id)).first()
        if flavor is None and flavor_id != c.NIL_UUID:
            raise ValidationFailure("Invalid flavor_id.")
        # upstream's nil-UUID flavor is a disabled placeholder row
        if flavor is None or not flavor.enabled:
            raise BadRequest("The selected flavor is not allowed in this deployment: "
                             f"{flavor_id}")
        profile = conn.execute(select(t.flavor_profile).where(
            t.flavor_profile.c.id == flavor.flavor_profile_id)).first()
        if profile is not None:
            if body.get("provider") and not _same_driver(profile.provider_name, provider):
                raise BadRequest(f"Flavor '{flavor_id}' is not compatible with provider "
                                 f"'{body['provider']}'")
            if not body.get("provider"):
                provider = profile.provider_name
            try:
                data = json.loads(profile.flavor_data)
            except ValueError:
                data = {}
            topology = data.get("loadbalancer_topology", topology)
    az_name = body.get("availability_zone")
    if az_name:
        az = conn.execute(select(t.availability_zone).where(
            t.availability_zone.c.name == az_name)).first()
        if az is None:
            raise ValidationFailure("Invalid availability zone.")
        if not az.enabled:
            raise BadRequest("The selected availability_zone is not allowed in this "
                             f"deployment: {az_name}")
    return provider, topology
