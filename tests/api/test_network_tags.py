"""Neutron tags on networks, subnets and ports: the sub-resource openstacksdk's and
gophercloud's tag calls use, its limits and errors, and the four tag filters on lists."""

from __future__ import annotations

from typing import Any

import pytest
from network_helpers import (
    NET,
    Callers,
    get,
    make_network,
    make_port,
    make_subnet,
    neutron_error,
)


def _resource(api: Any, plural: str) -> str:
    network = make_network(api, "tagged", shared=True)
    if plural == "networks":
        return str(network["id"])
    subnet = make_subnet(api, network["id"], "10.70.0.0/24")
    return str(subnet["id"] if plural == "subnets" else make_port(api, network["id"])["id"])


@pytest.mark.parametrize("plural", ["networks", "subnets", "ports"])
def test_tag_calls_as_openstacksdk_makes_them(api, plural):
    rid = _resource(api, plural)
    one = f"{NET}/{plural}/{rid}"
    tags = f"{one}/tags"
    singular = plural[:-1]
    assert get(api, tags) == {"tags": []}

    code, body = api.put(tags, {"tags": ["red", "blue"]})
    assert (code, body) == (200, {"tags": ["red", "blue"]})  # the list sent, as Neutron
    assert get(api, tags) == {"tags": ["blue", "red"]}
    shown = get(api, one)[singular]
    assert (shown["tags"], shown["revision_number"]) == (["blue", "red"], 1)

    assert api.put(f"{tags}/green")[0] == 201
    assert api.put(f"{tags}/green")[0] == 201  # idempotent
    assert api.get(f"{tags}/green")[0] == 204
    code, body = api.get(f"{tags}/yellow")
    assert code == 404 and neutron_error(body) == ("TagNotFound", "Tag yellow could not be found.")

    code, body = api.post(tags, {"tags": ["yellow", "red"]})
    assert (code, body) == (201, {"tags": ["yellow", "red"]})
    assert get(api, tags) == {"tags": ["blue", "green", "red", "yellow"]}

    assert api.delete(f"{tags}/blue")[0] == 204
    code, body = api.delete(f"{tags}/blue")  # not idempotent, as Neutron
    assert code == 404 and neutron_error(body)[0] == "TagNotFound"
    assert get(api, tags) == {"tags": ["green", "red", "yellow"]}

    assert api.delete(tags)[0] == 204
    assert get(api, one)[singular]["tags"] == []


@pytest.mark.parametrize(("body", "status", "kind", "text"), [
    ({"tag": ["a"]}, 400, "InvalidInput", "Invalid input for operation: Invalid tags body."),
    ([], 400, "InvalidInput", "Invalid tags body"),
    ({"tags": "a"}, 400, "InvalidInput", "'a' is not a list"),
    ({"tags": ["a", "a"]}, 400, "InvalidInput", "Duplicate items in the list: 'a'"),
    ({"tags": [1]}, 400, "InvalidInput", "'1' is not a valid string"),
    ({"tags": ["x" * 256]}, 400, "InvalidInput", "exceeds maximum length of 255"),
    ({"tags": [f"t{i}" for i in range(51)]}, 400, "BadRequest",
     "Bad networks request: The number of tags exceed the per-resource limit of 50."),
])
def test_tag_body_validation_changes_nothing(api, body, status, kind, text):
    rid = _resource(api, "networks")
    tags = f"{NET}/networks/{rid}/tags"
    api.put(tags, {"tags": ["keep"]})
    code, data = api.put(tags, body)
    assert code == status, data
    got_kind, message = neutron_error(data)
    assert got_kind == kind and text in message
    assert get(api, tags) == {"tags": ["keep"]}


def test_adding_past_the_limit_is_refused(api):
    rid = _resource(api, "networks")
    tags = f"{NET}/networks/{rid}/tags"
    assert api.put(tags, {"tags": [f"t{i}" for i in range(50)]})[0] == 200
    code, body = api.put(f"{tags}/one-more")
    assert code == 400 and neutron_error(body)[0] == "BadRequest"
    code, body = api.post(tags, {"tags": ["one-more"]})
    assert code == 400 and neutron_error(body)[0] == "BadRequest"
    assert len(get(api, tags)["tags"]) == 50


def test_tags_of_unknown_resources_are_404(api):
    code, body = api.get(f"{NET}/networks/nope/tags")
    assert code == 404 and neutron_error(body) == ("NetworkNotFound",
                                                   "Network nope could not be found.")
    code, body = api.put(f"{NET}/ports/nope/tags/x")
    assert code == 404 and neutron_error(body)[0] == "PortNotFound"


def test_tag_filters_on_lists(api):
    ids = {}
    for name, tags in (("n-ab", ["a", "b"]), ("n-a", ["a"]), ("n-c", ["c"]), ("n-none", [])):
        ids[name] = make_network(api, name)["id"]
        api.put(f"{NET}/networks/{ids[name]}/tags", {"tags": tags})

    def names(**params: str) -> set[str]:
        code, body = api.get(f"{NET}/networks", params=params)
        assert code == 200, body
        return {n["name"] for n in body["networks"]} & set(ids)

    assert names(tags="a,b") == {"n-ab"}
    assert names(tags="a") == {"n-ab", "n-a"}
    assert names(**{"tags-any": "b,c"}) == {"n-ab", "n-c"}
    assert names(**{"not-tags": "a,b"}) == {"n-a", "n-c", "n-none"}
    assert names(**{"not-tags-any": "a,c"}) == {"n-none"}


def test_tag_rights_follow_the_resource(api):
    callers = Callers(api)
    shared = make_network(api, "shared-by-admin", shared=True)
    callers.project("p1")
    mine = make_network(api, "mine")
    assert api.put(f"{NET}/networks/{mine['id']}/tags/x")[0] == 201
    # a shared network is visible, but only its owner (or an admin) tags it
    assert get(api, f"{NET}/networks/{shared['id']}/tags") == {"tags": []}
    code, body = api.put(f"{NET}/networks/{shared['id']}/tags/x")
    assert code == 403
    assert neutron_error(body) == ("PolicyNotAuthorized",
                                   "(rule:update_network:tags) is disallowed by policy")
    code, body = api.delete(f"{NET}/networks/{shared['id']}/tags")
    assert code == 403 and "delete_network:tags" in neutron_error(body)[1]
    callers.project("p2")
    code, body = api.get(f"{NET}/networks/{mine['id']}/tags")
    assert code == 404 and neutron_error(body)[0] == "NetworkNotFound"
    assert api.put(f"{NET}/networks/{mine['id']}/tags/y")[0] == 404
    callers.project("p1", "reader")
    code, body = api.post(f"{NET}/networks/{mine['id']}/tags", {"tags": ["z"]})
    assert code == 403 and "create_network:tags" in neutron_error(body)[1]
    assert get(api, f"{NET}/networks/{mine['id']}/tags") == {"tags": ["x"]}


def test_deleting_a_network_takes_its_tags(api):
    network = make_network(api, "n1")
    subnet = make_subnet(api, network["id"], "10.71.0.0/24")
    api.put(f"{NET}/networks/{network['id']}/tags", {"tags": ["gone"]})
    api.put(f"{NET}/subnets/{subnet['id']}/tags", {"tags": ["gone"]})
    assert api.delete(f"{NET}/networks/{network['id']}")[0] == 204
    with api.service.engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT resource_id FROM tag WHERE tag = 'gone'").all()
    assert left == []
