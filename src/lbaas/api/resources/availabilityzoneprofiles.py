"""Availability zone profiles (admin): provider-specific data behind availability zones.

Same behaviour as flavor profiles (see ``flavorprofiles.ProfileResource``), with the
availability zone capability table of the provider and the singular links key upstream uses
(``availability_zone_profile_links``).
"""

from __future__ import annotations

from lbaas.api.http import ApiRequest, Response, Router
from lbaas.api.resources import providers
from lbaas.api.resources.flavorprofiles import ProfileResource
from lbaas.store import tables as t

AZ_PROFILES = ProfileResource(
    table=t.availability_zone_profile, data_field="availability_zone_data",
    one="availability_zone_profile", plural="availability_zone_profiles",
    links_key="availability_zone_profile_links", policy="availability-zone-profile",
    label="Availability Zone Profile", missing_label="Availability Zone Profile",
    users=t.availability_zone, user_column="availability_zone_profile_id",
    validate=providers.validate_az_data)

COLLECTION = AZ_PROFILES.collection


async def get_all(req: ApiRequest) -> Response:
    """List availability zone profiles."""
    return await AZ_PROFILES.get_all(req)


async def get_one(req: ApiRequest) -> Response:
    """Show an availability zone profile."""
    return await AZ_PROFILES.get_one(req)


async def create(req: ApiRequest) -> Response:
    """Create an availability zone profile."""
    return await AZ_PROFILES.create(req)


async def put(req: ApiRequest) -> Response:
    """Update an availability zone profile."""
    return await AZ_PROFILES.put(req)


async def delete_one(req: ApiRequest) -> Response:
    """Delete an availability zone profile."""
    return await AZ_PROFILES.delete(req)


def register(router: Router) -> None:
    base = "/v2/lbaas/availabilityzoneprofiles"
    router.add("GET", base, get_all)
    router.add("POST", base, create)
    router.add("GET", base + "/{id}", get_one)
    router.add("PUT", base + "/{id}", put)
    router.add("DELETE", base + "/{id}", delete_one)


OPENAPI = AZ_PROFILES.openapi()
