"""Provider list and provider capability endpoints as clients see them."""

from __future__ import annotations

from lbaas.api.policy import RequestContext

PROVIDERS = "/v2/lbaas/providers"

FLAVOR_KEYS = ["loadbalancer_topology", "compute_flavor", "amp_image_tag", "sriov_vip",
               "allow_member_sriov"]
AZ_KEYS = ["compute_zone", "volume_zone", "management_network", "valid_vip_networks"]


def test_list_comes_from_enabled_provider_drivers(api):
    code, body = api.get(PROVIDERS)
    assert code == 200
    assert body == {"providers": [
        {"name": "amphora", "description": "The Octavia Amphora driver."},
        {"name": "octavia", "description": "Deprecated alias of the Octavia Amphora driver."},
        {"name": "noop_driver", "description": "The No-Op driver."},
    ]}


def test_list_follows_settings_and_fields(service_factory):
    api = service_factory(api={"enabled_provider_drivers": {"amphora": "Amp only."}})
    code, body = api.get(PROVIDERS)
    assert code == 200 and body == {"providers": [{"name": "amphora",
                                                   "description": "Amp only."}]}
    code, body = api.get(PROVIDERS + "?fields=name")
    assert code == 200 and body == {"providers": [{"name": "amphora"}]}
    code, body = api.get("/v2.0/lbaas/providers.json")
    assert code == 200 and len(body["providers"]) == 1


def test_flavor_capabilities_of_amphora(api):
    code, body = api.get(PROVIDERS + "/amphora/flavor_capabilities")
    assert code == 200
    assert list(body) == ["flavor_capabilities"]
    assert [c["name"] for c in body["flavor_capabilities"]] == FLAVOR_KEYS
    topology = body["flavor_capabilities"][0]["description"]
    assert topology.startswith("The load balancer topology. One of: SINGLE")


def test_availability_zone_capabilities_of_amphora(api):
    code, body = api.get(PROVIDERS + "/amphora/availability_zone_capabilities")
    assert code == 200
    assert [c["name"] for c in body["availability_zone_capabilities"]] == AZ_KEYS
    assert body["availability_zone_capabilities"][0] == {
        "name": "compute_zone", "description": "The compute availability zone."}


def test_alias_exposes_amphora_capabilities_and_noop_upstreams_noop_lists(api):
    _, amphora = api.get(PROVIDERS + "/amphora/flavor_capabilities")
    code, body = api.get(f"{PROVIDERS}/octavia/flavor_capabilities")
    assert code == 200 and body == amphora
    for provider in ("noop", "noop_driver"):
        assert api.get(f"{PROVIDERS}/{provider}/flavor_capabilities") == (200, {
            "flavor_capabilities": [{"name": "amp_image_tag", "description":
                                     "The glance image tag to use for this load balancer."}]})
        code, body = api.get(f"{PROVIDERS}/{provider}/availability_zone_capabilities")
        assert [cap["name"] for cap in body["availability_zone_capabilities"]] == [
            "compute_zone", "volume_zone"]


def test_capability_filters_are_exact_matches(api):
    path = PROVIDERS + "/amphora/flavor_capabilities"
    code, body = api.get(path + "?name=compute_flavor")
    assert code == 200
    assert body == {"flavor_capabilities": [{"name": "compute_flavor",
                                             "description": "The compute driver flavor ID."}]}
    code, body = api.get(path + "?name=compute")
    assert code == 200 and body == {"flavor_capabilities": []}
    code, body = api.get(path, params={"description": "The amphora image tag."})
    assert [c["name"] for c in body["flavor_capabilities"]] == ["amp_image_tag"]
    code, body = api.get(path + "?name=compute_flavor&description=nope")
    assert body == {"flavor_capabilities": []}
    code, body = api.get(PROVIDERS + "/amphora/availability_zone_capabilities?fields=name")
    assert body["availability_zone_capabilities"] == [{"name": k} for k in AZ_KEYS]


def test_provider_not_enabled_is_400(api):
    for tail in ("flavor_capabilities", "availability_zone_capabilities"):
        code, body = api.get(f"{PROVIDERS}/bogus/{tail}")
        assert code == 400
        assert body["faultstring"] == "Provider 'bogus' is not enabled."


def test_enabled_provider_without_a_driver_is_501(service_factory):
    api = service_factory(api={"enabled_provider_drivers": {"amphora": "a", "ovn": "b"}})
    code, body = api.get(PROVIDERS + "/ovn/flavor_capabilities")
    assert code == 501
    assert body == {"faultcode": "Server", "faultstring": "Provider 'ovn' was not found.",
                    "debuginfo": None}
    code, body = api.get(PROVIDERS + "/noop/flavor_capabilities")
    assert code == 400 and body["faultstring"] == "Provider 'noop' is not enabled."


class TokenAs:
    """Stands in for Keystone: every request carries this project and these roles."""

    def __init__(self, project, *roles):
        self.context = RequestContext(project_id=project, roles=frozenset(roles),
                                      is_admin="admin" in roles)

    async def authenticate(self, _req):
        return self.context


def test_rbac_users_list_providers_admins_see_capabilities(api):
    api.service.app.authenticator = TokenAs("p1", "reader")
    assert api.get(PROVIDERS)[0] == 200
    for tail in ("flavor_capabilities", "availability_zone_capabilities"):
        code, body = api.get(f"{PROVIDERS}/amphora/{tail}")
        assert code == 403
        assert body["faultstring"] == "Policy does not allow this request to be performed."
    api.service.app.authenticator = TokenAs("p1", "unrelated-role")
    assert api.get(PROVIDERS)[0] == 403
    api.service.app.authenticator = TokenAs("p1", "admin")
    assert api.get(PROVIDERS + "/amphora/flavor_capabilities")[0] == 200
