"""Flavor profiles, flavors, availability zone profiles and availability zones."""

from __future__ import annotations

import json
import uuid

import pytest

from lbaas.api.policy import RequestContext

FPS = "/v2.0/lbaas/flavorprofiles"
FLAVORS = "/v2.0/lbaas/flavors"
AZPS = "/v2.0/lbaas/availabilityzoneprofiles"
AZS = "/v2.0/lbaas/availabilityzones"
LBS = "/v2/lbaas/loadbalancers"
NIL = "00000000-0000-0000-0000-000000000000"

# (collection, envelope, data field) for the two profile kinds, which behave alike
PROFILE_KINDS = [
    pytest.param(FPS, "flavorprofile", "flavor_data", id="flavor-profile"),
    pytest.param(AZPS, "availability_zone_profile", "availability_zone_data", id="az-profile"),
]
VALID_DATA = {"flavor_data": {"loadbalancer_topology": "ACTIVE_STANDBY", "sriov_vip": False},
              "availability_zone_data": {"compute_zone": "nova",
                                         "valid_vip_networks": ["n1"]}}


def fault(body):
    return body["faultstring"]


def make_profile(api, path=FPS, env="flavorprofile", field="flavor_data", data=None,
                 name="prof", provider="amphora"):
    raw = json.dumps(VALID_DATA[field] if data is None else data)
    code, body = api.post(path, {env: {"name": name, "provider_name": provider, field: raw}})
    assert code == 201, body
    return body[env]


def make_flavor(api, profile_id, name="gold", **extra):
    code, body = api.post(FLAVORS, {"flavor": {"name": name, "flavor_profile_id": profile_id,
                                               **extra}})
    assert code == 201, body
    return body["flavor"]


def make_az(api, profile_id, name="az1", **extra):
    code, body = api.post(AZS, {"availability_zone": {
        "name": name, "availability_zone_profile_id": profile_id, **extra}})
    assert code == 201, body
    return body["availability_zone"]


# ---------------------------------------------------------------- profiles (both kinds)

@pytest.mark.parametrize(("path", "env", "field"), PROFILE_KINDS)
def test_profile_create_show_list(api, path, env, field):
    raw = json.dumps(VALID_DATA[field])
    code, body = api.post(path, {env: {"name": "p1", "provider_name": "amphora", field: raw}})
    assert code == 201
    prof = body[env]
    assert prof == {"id": prof["id"], "name": "p1", "provider_name": "amphora", field: raw}
    uuid.UUID(prof["id"])
    code, body = api.get(f"{path}/{prof['id']}")
    assert code == 200 and body == {env: prof}
    code, body = api.get(f"{path}/{prof['id']}?fields=id&fields=provider_name")
    assert body == {env: {"id": prof["id"], "provider_name": "amphora"}}
    code, body = api.get(path)
    links_key = env + "_links"  # singular on purpose: upstream's spelling
    assert code == 200 and body == {env.replace("profile", "profiles"): [prof], links_key: []}


@pytest.mark.parametrize(("path", "env", "field"), PROFILE_KINDS)
def test_profile_required_fields_and_lengths(api, path, env, field):
    full = {"name": "p", "provider_name": "amphora", field: "{}"}
    for missing in ("name", "provider_name", field):
        body = {k: v for k, v in full.items() if k != missing}
        code, resp = api.post(path, {env: body})
        assert code == 400
        assert fault(resp) == (f"Invalid input for field/attribute {missing}. Value: 'None'. "
                               "Mandatory field missing.")
    for key, value in (("name", "n" * 256), ("provider_name", "n" * 256),
                       (field, " " * 4097)):
        code, resp = api.post(path, {env: {**full, key: value}})
        assert code == 400, key
        assert "maximum character requirement" in fault(resp)
    code, resp = api.post(path, {env: {**full, "bogus": 1}})
    assert code == 400 and "Unknown attribute" in fault(resp)
    code, resp = api.post(path, {env: {**full, field: {"a": 1}}})
    assert code == 400 and "Wrong type" in fault(resp)


@pytest.mark.parametrize(("path", "env", "field"), PROFILE_KINDS)
def test_profile_data_must_be_json(api, path, env, field):
    code, body = api.post(path, {env: {"name": "p", "provider_name": "amphora",
                                       field: '{hello: "world"}'}})
    assert code == 400
    assert fault(body) == f'{{hello: "world"}} is not a valid option for {field}'


@pytest.mark.parametrize(("path", "env", "field", "data", "message"), [
    (FPS, "flavorprofile", "flavor_data", {"bogus": 1},
     "Additional properties are not allowed ('bogus' was unexpected)"),
    (FPS, "flavorprofile", "flavor_data", {"loadbalancer_topology": "TRIPLE"},
     "loadbalancer_topology 'TRIPLE' is not one of ['SINGLE', 'ACTIVE_STANDBY']"),
    (FPS, "flavorprofile", "flavor_data", {"sriov_vip": "yes"},
     "sriov_vip 'yes' is not of type 'boolean'"),
    (FPS, "flavorprofile", "flavor_data", {"compute_flavor": 7},
     "compute_flavor 7 is not of type 'string'"),
    (FPS, "flavorprofile", "flavor_data", [1], "[1] is not of type 'object'"),
    (AZPS, "availability_zone_profile", "availability_zone_data", {"a": 1, "b": 2},
     "Additional properties are not allowed ('a', 'b' were unexpected)"),
    (AZPS, "availability_zone_profile", "availability_zone_data",
     {"valid_vip_networks": "net"}, "valid_vip_networks 'net' is not of type 'array'"),
    (AZPS, "availability_zone_profile", "availability_zone_data",
     {"management_network": True}, "management_network True is not of type 'string'"),
])
def test_amphora_rejects_unsupported_profile_data_with_501(api, path, env, field, data,
                                                           message):
    code, body = api.post(path, {env: {"name": "p", "provider_name": "amphora",
                                       field: json.dumps(data)}})
    assert code == 501
    assert body == {"faultcode": "Server", "debuginfo": None, "faultstring":
                    f"Provider 'amphora' does not support a requested option: {message}"}
    code, body = api.get(path)
    assert body[env.replace("profile", "profiles")] == []


@pytest.mark.parametrize(("path", "env", "field"), PROFILE_KINDS)
def test_profile_provider_rules(api, path, env, field):
    code, body = api.post(path, {env: {"name": "p", "provider_name": "nope", field: "{}"}})
    assert code == 400 and fault(body) == "Provider 'nope' is not enabled."
    # the alias is validated as amphora and named in the message
    code, body = api.post(path, {env: {"name": "p", "provider_name": "octavia",
                                       field: '{"x": 1}'}})
    assert code == 501
    assert fault(body).startswith("Provider 'octavia' does not support a requested option")
    # the noop driver accepts any keys, but the document must be an object
    make_profile(api, path, env, field, data={"anything": [1, 2]}, provider="noop")
    code, body = api.post(path, {env: {"name": "p", "provider_name": "noop", field: "3"}})
    assert code == 501 and fault(body).endswith("3 is not of type 'object'")


@pytest.mark.parametrize(("path", "env", "field", "label", "missing_label"), [
    (FPS, "flavorprofile", "flavor_data", "Flavor profile", "Flavor Profile"),
    (AZPS, "availability_zone_profile", "availability_zone_data", "Availability Zone Profile",
     "Availability Zone Profile"),
])
def test_profile_not_found(api, path, env, field, label, missing_label):
    other = str(uuid.uuid4())
    for method in ("get", "delete"):
        code, body = getattr(api, method)(f"{path}/{NIL}")
        assert code == 404 and fault(body) == f"{label} {NIL} not found."
        code, body = getattr(api, method)(f"{path}/{other}")
        assert code == 404 and fault(body) == f"{missing_label} {other} not found."
    code, body = api.put(f"{path}/{other}", {env: {"name": "x"}})
    assert code == 404 and fault(body) == f"{missing_label} {other} not found."


@pytest.mark.parametrize(("path", "env", "field"), PROFILE_KINDS)
def test_profile_update(api, path, env, field):
    prof = make_profile(api, path, env, field)
    url = f"{path}/{prof['id']}"
    code, body = api.put(url, {env: {"name": "renamed", "provider_name": "octavia",
                                     field: "{}"}})
    assert code == 200
    assert body[env] == {"id": prof["id"], "name": "renamed", "provider_name": "octavia",
                         field: "{}"}
    code, body = api.put(url, {env: {}})
    assert code == 200 and body[env]["name"] == "renamed"
    for key in ("name", "provider_name", field):
        code, body = api.put(url, {env: {key: None}})
        assert code == 400 and fault(body) == f"None is not a valid option for {key}"
    code, body = api.put(url, {env: {field: "not json"}})
    assert code == 400 and fault(body) == f"not json is not a valid option for {field}"
    code, body = api.put(url, {env: {field: '{"bogus": true}'}})
    assert code == 501
    code, body = api.put(url, {env: {"provider_name": "nope"}})
    assert code == 400 and fault(body) == "Provider 'nope' is not enabled."
    code, body = api.get(url)
    assert body[env]["provider_name"] == "octavia" and body[env][field] == "{}"


def test_flavor_profile_in_use_rules(api):
    prof = make_profile(api)
    flavor = make_flavor(api, prof["id"])
    url = f"{FPS}/{prof['id']}"
    in_use = f"Flavor profile {prof['id']} is in use and cannot be modified."
    code, body = api.put(url, {"flavorprofile": {"name": "still-fine"}})
    assert code == 200 and body["flavorprofile"]["name"] == "still-fine"
    for change in ({"flavor_data": "{}"}, {"provider_name": "noop"}):
        code, body = api.put(url, {"flavorprofile": change})
        assert code == 409 and fault(body) == in_use
    code, body = api.delete(url)
    assert code == 409 and fault(body) == in_use
    assert api.delete(f"{FLAVORS}/{flavor['id']}")[0] == 204
    assert api.delete(url)[0] == 204
    assert api.get(url)[0] == 404


def test_az_profile_in_use_rules(api):
    prof = make_profile(api, AZPS, "availability_zone_profile", "availability_zone_data")
    make_az(api, prof["id"])
    url = f"{AZPS}/{prof['id']}"
    in_use = f"Availability Zone Profile {prof['id']} is in use and cannot be modified."
    code, body = api.put(url, {"availability_zone_profile": {"availability_zone_data": "{}"}})
    assert code == 409 and fault(body) == in_use
    code, body = api.delete(url)
    assert code == 409 and fault(body) == in_use
    assert api.delete(f"{AZS}/az1")[0] == 204
    assert api.delete(url)[0] == 204


def test_profile_list_pagination_sorting_and_filters(api):
    ids = [make_profile(api, name=f"p{i}")["id"] for i in range(3)]
    code, body = api.get(FPS + "?limit=2&sort=name:desc")
    assert code == 200
    assert [p["name"] for p in body["flavorprofiles"]] == ["p2", "p1"]
    assert body["flavorprofile_links"][0]["rel"] == "next"
    assert f"marker={ids[1]}" in body["flavorprofile_links"][0]["href"]
    code, body = api.get(FPS + f"?limit=2&sort=name:desc&marker={ids[1]}")
    assert [p["name"] for p in body["flavorprofiles"]] == ["p0"]
    assert [link["rel"] for link in body["flavorprofile_links"]] == ["previous"]
    code, body = api.get(FPS + "?name=p1")
    assert [p["id"] for p in body["flavorprofiles"]] == [ids[1]]
    code, body = api.get(FPS + "?bogus=1")
    assert code == 400 and fault(body) == "One or more arguments are either duplicate or invalid"
    code, body = api.get(FPS + "?marker=nope")
    assert code == 400 and fault(body) == "Supplied pagination marker 'nope' is not valid."


# ---------------------------------------------------------------- flavors

def test_flavor_create_show_list(api):
    prof = make_profile(api)
    code, body = api.post(FLAVORS, {"flavor": {"name": "gold",
                                               "flavor_profile_id": prof["id"]}})
    assert code == 201
    flavor = body["flavor"]
    assert flavor == {"id": flavor["id"], "name": "gold", "description": "", "enabled": True,
                      "flavor_profile_id": prof["id"]}
    code, body = api.get(f"{FLAVORS}/{flavor['id']}")
    assert code == 200 and body == {"flavor": flavor}
    code, body = api.get(f"{FLAVORS}/{flavor['id']}?fields=id,flavor_profile_id")
    assert body == {"flavor": {"id": flavor["id"], "flavor_profile_id": prof["id"]}}
    code, body = api.get(FLAVORS)
    assert body == {"flavors": [flavor], "flavors_links": []}
    code, body = api.get("/v2/flavors?fields=name")
    assert body["flavors"] == [{"name": "gold"}]


def test_flavor_create_validation(api):
    prof = make_profile(api)
    code, body = api.post(FLAVORS, {"flavor": {"flavor_profile_id": prof["id"]}})
    assert code == 400 and fault(body) == ("Invalid input for field/attribute name. Value: "
                                           "'None'. Mandatory field missing.")
    code, body = api.post(FLAVORS, {"flavor": {"name": "xyz"}})
    assert code == 400 and fault(body) == ("Invalid input for field/attribute "
                                           "flavor_profile_id. Value: 'None'. Mandatory field "
                                           "missing.")
    code, body = api.post(FLAVORS, {"flavor": {"name": "xyz", "flavor_profile_id": "bogus"}})
    assert code == 400 and fault(body) == ("Invalid input for field/attribute "
                                           "flavor_profile_id. Value: 'bogus'. Value should be "
                                           "UUID format")
    for extra in ({"name": "n" * 256}, {"description": "d" * 256}, {"enabled": "maybe"},
                  {"id": str(uuid.uuid4())}):
        code, body = api.post(FLAVORS, {"flavor": {"name": "x", "flavor_profile_id": prof["id"],
                                                   **extra}})
        assert code == 400, extra
    missing = str(uuid.uuid4())
    code, body = api.post(FLAVORS, {"flavor": {"name": "x", "flavor_profile_id": missing}})
    assert code == 400 and fault(body) == f"Flavor profile {missing} not found."
    assert api.get(FLAVORS)[1]["flavors"] == []


def test_flavor_names_are_unique(api):
    prof = make_profile(api)
    make_flavor(api, prof["id"], name="name")
    other = make_flavor(api, prof["id"], name="other")
    code, body = api.post(FLAVORS, {"flavor": {"name": "name", "flavor_profile_id": prof["id"]}})
    assert code == 409 and fault(body) == "A flavor of name already exists."
    code, body = api.put(f"{FLAVORS}/{other['id']}", {"flavor": {"name": "name"}})
    assert code == 409 and fault(body) == "A flavor of name already exists."
    code, body = api.put(f"{FLAVORS}/{other['id']}", {"flavor": {"name": "other"}})
    assert code == 200


def test_flavor_update(api):
    prof = make_profile(api)
    flavor = make_flavor(api, prof["id"], name="Fancy", description="A great flavor.")
    url = f"{FLAVORS}/{flavor['id']}"
    code, body = api.put(url, {"flavor": {"name": "Better", "description": "Even better.",
                                          "enabled": False}})
    assert code == 200
    assert body["flavor"] == {"id": flavor["id"], "name": "Better",
                              "description": "Even better.", "enabled": False,
                              "flavor_profile_id": prof["id"]}
    code, body = api.put(url, {"flavor": {}})
    assert code == 200 and body["flavor"]["name"] == "Better"
    code, body = api.put(url, {"flavor": {"description": None}})
    assert code == 200 and body["flavor"]["description"] == ""
    code, body = api.put(url, {"flavor": {"flavor_profile_id": str(uuid.uuid4())}})
    assert code == 400 and "Unknown attribute" in fault(body)
    code, body = api.put(url, {"flavor": {"name": None}})
    assert code == 400
    assert api.get(url)[1]["flavor"]["flavor_profile_id"] == prof["id"]


def test_flavor_not_found(api):
    code, body = api.get(f"{FLAVORS}/{NIL}")
    assert code == 404 and fault(body) == f"Flavor {NIL} not found."
    code, body = api.put(f"{FLAVORS}/{NIL}", {"flavor": {"name": "fake_name"}})
    assert code == 404 and fault(body) == f"Flavor {NIL} not found."
    code, body = api.delete(f"{FLAVORS}/{NIL}")
    assert code == 404 and fault(body) == f"Flavor {NIL} not found."
    code, body = api.delete(f"{FLAVORS}/bogus_id")
    assert code == 404 and fault(body) == "Flavor bogus_id not found."


def test_flavor_in_use_by_a_load_balancer(api):
    prof = make_profile(api, data={"loadbalancer_topology": "ACTIVE_STANDBY"})
    flavor = make_flavor(api, prof["id"])
    lb = api.create_lb(flavor_id=flavor["id"])
    assert lb["flavor_id"] == flavor["id"]
    code, body = api.delete(f"{FLAVORS}/{flavor['id']}")
    assert code == 409
    assert fault(body) == f"Flavor {flavor['id']} is in use and cannot be modified."
    assert api.get(f"{FLAVORS}/{flavor['id']}")[0] == 200
    assert api.delete(f"{LBS}/{lb['id']}")[0] == 204
    api.wait_lb(lb["id"], "DELETED")
    assert api.delete(f"{FLAVORS}/{flavor['id']}")[0] == 204
    assert api.get(f"{FLAVORS}/{flavor['id']}")[0] == 404


def test_disabled_flavor_is_visible_but_not_usable(api):
    prof = make_profile(api)
    flavor = make_flavor(api, prof["id"], enabled=False)
    code, body = api.get(FLAVORS + "?enabled=false")
    assert [f["id"] for f in body["flavors"]] == [flavor["id"]]
    assert api.get(FLAVORS + "?enabled=true")[1]["flavors"] == []
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id(
        "public-subnet"), "flavor_id": flavor["id"]}})
    assert code == 400


def test_flavor_list_sort_and_pagination(api):
    prof = make_profile(api)
    for name in ("b", "c", "a"):
        make_flavor(api, prof["id"], name=name)
    code, body = api.get(FLAVORS + "?sort=name:asc")
    assert [f["name"] for f in body["flavors"]] == ["a", "b", "c"]
    code, body = api.get(FLAVORS + "?sort=name:desc&limit=1")
    assert [f["name"] for f in body["flavors"]] == ["c"]
    assert body["flavors_links"][0]["rel"] == "next"
    code, body = api.get(FLAVORS + "?sort=bogus")
    assert code == 400 and fault(body) == "Supplied sort key 'bogus' is not valid."


# ---------------------------------------------------------------- availability zones

def az_profile(api):
    return make_profile(api, AZPS, "availability_zone_profile", "availability_zone_data")


def test_az_create_show_list(api):
    prof = az_profile(api)
    code, body = api.post(AZS, {"availability_zone": {
        "name": "az1", "description": "first", "availability_zone_profile_id": prof["id"]}})
    assert code == 201
    az = body["availability_zone"]
    assert az == {"name": "az1", "description": "first", "enabled": True,
                  "availability_zone_profile_id": prof["id"]}
    code, body = api.get(f"{AZS}/az1")
    assert code == 200 and body == {"availability_zone": az}
    code, body = api.get(f"{AZS}/az1?fields=name")
    assert body == {"availability_zone": {"name": "az1"}}
    code, body = api.get(AZS)
    assert body == {"availability_zones": [az], "availability_zones_links": []}


def test_az_create_validation(api):
    prof = az_profile(api)
    code, body = api.post(AZS, {"availability_zone": {"availability_zone_profile_id":
                                                      prof["id"]}})
    assert code == 400 and fault(body) == ("Invalid input for field/attribute name. Value: "
                                           "'None'. Mandatory field missing.")
    code, body = api.post(AZS, {"availability_zone": {"name": "az"}})
    assert code == 400 and "availability_zone_profile_id" in fault(body)
    code, body = api.post(AZS, {"availability_zone": {"name": "az",
                                                      "availability_zone_profile_id": "x"}})
    assert code == 400 and "Value should be UUID format" in fault(body)
    code, body = api.post(AZS, {"availability_zone": {
        "name": "a" * 256, "availability_zone_profile_id": prof["id"]}})
    assert code == 400
    missing = str(uuid.uuid4())
    code, body = api.post(AZS, {"availability_zone": {
        "name": "az", "availability_zone_profile_id": missing}})
    assert code == 400 and fault(body) == f"Availability Zone Profile {missing} not found."
    make_az(api, prof["id"], name="az")
    code, body = api.post(AZS, {"availability_zone": {
        "name": "az", "availability_zone_profile_id": prof["id"]}})
    assert code == 409 and fault(body) == "A availability zone of az already exists."


def test_az_update_and_immutable_fields(api):
    prof = az_profile(api)
    make_az(api, prof["id"])
    code, body = api.put(f"{AZS}/az1", {"availability_zone": {"description": "d",
                                                              "enabled": False}})
    assert code == 200
    assert body["availability_zone"] == {"name": "az1", "description": "d", "enabled": False,
                                         "availability_zone_profile_id": prof["id"]}
    for change in ({"name": "az2"}, {"availability_zone_profile_id": prof["id"]}):
        code, body = api.put(f"{AZS}/az1", {"availability_zone": change})
        assert code == 400 and "Unknown attribute" in fault(body)
    code, body = api.put(f"{AZS}/az1", {"availability_zone": {"enabled": None}})
    assert code == 400
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id(
        "public-subnet"), "availability_zone": "az1"}})
    assert code == 400  # disabled


def test_az_not_found(api):
    for path in (f"{AZS}/{NIL}", f"{AZS}/nowhere"):
        name = path.rsplit("/", 1)[1]
        for method in ("get", "delete"):
            code, body = getattr(api, method)(path)
            assert code == 404 and fault(body) == f"Availability Zone {name} not found."
        code, body = api.put(path, {"availability_zone": {"description": "x"}})
        assert code == 404


def test_az_in_use_by_a_load_balancer(api):
    prof = az_profile(api)
    make_az(api, prof["id"])
    lb = api.create_lb(availability_zone="az1")
    assert lb["availability_zone"] == "az1"
    code, body = api.delete(f"{AZS}/az1")
    assert code == 409
    assert fault(body) == "Availability Zone az1 is in use and cannot be modified."
    api.delete(f"{LBS}/{lb['id']}")
    api.wait_lb(lb["id"], "DELETED")
    assert api.delete(f"{AZS}/az1")[0] == 204
    assert api.get(f"{AZS}/az1")[0] == 404


def test_az_list_pagination_uses_the_name_as_marker(api):
    prof = az_profile(api)
    for name in ("zone-c", "zone-a", "zone-b"):
        make_az(api, prof["id"], name=name)
    code, body = api.get(AZS + "?limit=2&sort=name")
    assert [a["name"] for a in body["availability_zones"]] == ["zone-a", "zone-b"]
    nxt = body["availability_zones_links"][0]
    assert nxt["rel"] == "next" and "marker=zone-b" in nxt["href"]
    code, body = api.get(AZS + "?limit=2&sort=name&marker=zone-b")
    assert [a["name"] for a in body["availability_zones"]] == ["zone-c"]
    code, body = api.get(AZS + "?enabled=false")
    assert body["availability_zones"] == []
    code, body = api.get(AZS + "?id=zone-a")
    assert code == 400


# ---------------------------------------------------------------- RBAC

class TokenAs:
    """Stands in for Keystone: every request carries this project and these roles."""

    def __init__(self, project, *roles):
        self.context = RequestContext(project_id=project, roles=frozenset(roles),
                                      is_admin="admin" in roles)

    async def authenticate(self, _req):
        return self.context


def test_rbac_users_read_flavors_and_azs_admins_write(api):
    fp = make_profile(api)
    azp = az_profile(api)
    flavor = make_flavor(api, fp["id"])
    make_az(api, azp["id"])
    api.service.app.authenticator = TokenAs("p1", "member")
    assert [f["id"] for f in api.get(FLAVORS)[1]["flavors"]] == [flavor["id"]]
    assert api.get(f"{FLAVORS}/{flavor['id']}")[0] == 200
    assert api.get(AZS)[0] == 200 and api.get(f"{AZS}/az1")[0] == 200
    denied = [
        ("POST", FLAVORS, {"flavor": {"name": "x", "flavor_profile_id": fp["id"]}}),
        ("PUT", f"{FLAVORS}/{flavor['id']}", {"flavor": {"name": "y"}}),
        ("DELETE", f"{FLAVORS}/{flavor['id']}", None),
        ("POST", AZS, {"availability_zone": {"name": "x",
                                             "availability_zone_profile_id": azp["id"]}}),
        ("PUT", f"{AZS}/az1", {"availability_zone": {"description": "y"}}),
        ("DELETE", f"{AZS}/az1", None),
        ("GET", FPS, None), ("GET", f"{FPS}/{fp['id']}", None),
        ("POST", FPS, {"flavorprofile": {"name": "p", "provider_name": "amphora",
                                         "flavor_data": "{}"}}),
        ("PUT", f"{FPS}/{fp['id']}", {"flavorprofile": {"name": "q"}}),
        ("DELETE", f"{FPS}/{fp['id']}", None),
        ("GET", AZPS, None), ("GET", f"{AZPS}/{azp['id']}", None),
        ("DELETE", f"{AZPS}/{azp['id']}", None),
    ]
    for method, path, body in denied:
        code, resp = api.call(method, path, body)
        assert code == 403, (method, path)
        assert resp["faultstring"] == "Policy does not allow this request to be performed."
    api.service.app.authenticator = TokenAs("p1", "admin")
    assert api.put(f"{FLAVORS}/{flavor['id']}", {"flavor": {"name": "y"}})[0] == 200
    assert api.get(FPS)[0] == 200
