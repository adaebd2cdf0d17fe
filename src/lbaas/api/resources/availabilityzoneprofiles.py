"""Availability zone profiles (admin): provider-specific data behind availability zones.

Same behaviour as flavor profiles (see ``flavorprofiles.ProfileResource``), with the
availability zone capability table of the provider and the singular links key upstream uses
(``availability_zone_profile_links``).
"""

from __future__ import annotations

from lbaas.api.http import Router
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


def register(router: Router) -> None:
    AZ_PROFILES.register(router, __name__, "/v2/lbaas/availabilityzoneprofiles",
                         "an availability zone profile", "availability zone profiles")


OPENAPI = AZ_PROFILES.openapi()
