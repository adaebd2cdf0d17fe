"""Neutron's version document, its v2.0 index and the extensions lbaas implements.

Clients probe ``/extensions`` before using an optional feature (openstacksdk skips its
``add_tags`` test without ``tag-creation``), so the list names exactly what is implemented here,
with Neutron's names and descriptions.
"""

from __future__ import annotations

from lbaas.api.http import ApiRequest, Response
from lbaas.api.resources.networking.errors import NeutronError
from lbaas.api.resources.networking.listing import API

RESOURCES = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("floatingip", "floatingips"))

# alias -> (name, description, updated)
EXTENSIONS = {
    "external-net": ("Neutron external network",
                     "Adds external network attribute to network resource.",
                     "2013-01-14T10:00:00-00:00"),
    "port-security": ("Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs",
                              "2013-07-23T10:00:00-00:00"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource.",
                "2015-03-25T10:00:00-00:00"),
    "project-id": ("project_id field enabled",
                   "Extension that indicates that project_id field is enabled.",
                   "2016-09-09T09:09:09-09:09"),
    "standard-attr-description": ("standard-attr-description",
                                  "Extension to add descriptions to standard attributes",
                                  "2016-02-10T10:00:00-00:00"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the "
                                "revision number of neutron resources.",
                                "2016-04-11T10:00:00-00:00"),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to "
                                "all Neutron resources that have Neutron standard attributes.",
                                "2016-09-12T10:00:00-00:00"),
    "standard-attr-tag": ("Tag support for resources with standard attribute: network, subnet, "
                          "port", "Enables to set tag on resources with standard attribute.",
                          "2017-01-01T00:00:00-00:00"),
    "quotas": ("Quota management support",
               "Expose functions for quotas management per project",
               "2012-07-29T10:00:00-00:00"),
    "quota_details": ("Quota details management support",
                      "Expose functions for quotas usage statistics per project",
                      "2017-02-10T10:00:00-00:00"),
    "tag-creation": ("Tag creation extension", "Allow to create multiple tags for a resource",
                     "2024-23-07T10:00:00-00:00"),
}


def _extension(alias: str) -> dict[str, object]:
    name, description, updated = EXTENSIONS[alias]
    return {"name": name, "alias": alias, "description": description, "updated": updated,
            "links": []}


async def versions(req: ApiRequest) -> Response:
    href = f"{req.base_url}{API}/"
    return Response(200, {"versions": [
        {"id": "v2.0", "status": "CURRENT", "links": [{"href": href, "rel": "self"}]}]})


async def v2_index(req: ApiRequest) -> Response:
    base = f"{req.base_url}{API}"
    return Response(200, {"resources": [
        {"name": name, "collection": plural,
         "links": [{"href": f"{base}/{plural}", "rel": "self"}]}
        for name, plural in RESOURCES]})


async def extensions(req: ApiRequest) -> Response:
    return Response(200, {"extensions": [_extension(a) for a in sorted(EXTENSIONS)]})


async def extension(req: ApiRequest) -> Response:
    alias = req.path_params["alias"]
    if alias not in EXTENSIONS:
        raise NeutronError("HTTPNotFound", f"Extension with alias {alias} does not exist", 404)
    return Response(200, {"extension": _extension(alias)})
