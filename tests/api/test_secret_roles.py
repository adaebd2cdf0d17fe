"""Barbican's default policy by role under noauth, where ``X-Roles`` carries the caller's roles
(Barbican's unauthenticated context): member/creator/admin write and decrypt, reader/observer/
audit see metadata only, any other role is refused."""

from __future__ import annotations

from typing import Any

import pytest

KM = "/key-manager/v1"
PROJECT = {"X-Project-Id": "alice"}


def _secret(api: Any, roles: str = "member") -> str:
    code, body = api.post(f"{KM}/secrets", {"name": "s", "payload": "top secret",
                                            "payload_content_type": "text/plain"},
                          headers={**PROJECT, "X-Roles": roles})
    assert code == 201, body
    return str(body["secret_ref"].split("testserver", 1)[1])


def _container(api: Any, secret: str) -> str:
    code, body = api.post(f"{KM}/containers", {
        "type": "generic", "secret_refs": [{"name": "a", "secret_ref": secret}]},
        headers={**PROJECT, "X-Roles": "member"})
    assert code == 201, body
    return str(body["container_ref"].split("testserver", 1)[1])


def _payload(api: Any, path: str, roles: str, via_accept: bool = False) -> Any:
    headers = {**PROJECT, "X-Roles": roles, "Accept": "text/plain"}
    return api.client.get(path if via_accept else path + "/payload", headers=headers)


@pytest.mark.parametrize("roles", ["member", "creator", "admin", "Member", "reader,member"])
def test_members_and_admins_create_decrypt_and_delete(api: Any, roles: str) -> None:
    path = _secret(api, roles)
    resp = _payload(api, path, roles)
    assert resp.status_code == 200 and resp.content == b"top secret"
    assert _payload(api, path, roles, via_accept=True).content == b"top secret"
    container = _container(api, path)
    headers = {**PROJECT, "X-Roles": roles}
    assert api.delete(container, headers=headers)[0] == 204
    assert api.delete(path, headers=headers)[0] == 204


@pytest.mark.parametrize("roles", ["reader", "observer", "audit"])
def test_readers_see_metadata_only(api: Any, roles: str) -> None:
    path = _secret(api)
    container = _container(api, path)
    headers = {**PROJECT, "X-Roles": roles}
    code, shown = api.get(path, headers=headers)
    assert code == 200 and shown["name"] == "s" and "payload" not in shown
    assert api.get(path + "/metadata", headers=headers)[0] == 200
    listed = api.get(f"{KM}/secrets", headers=headers)[1]
    assert [s["secret_ref"] for s in listed["secrets"]] == [f"http://testserver{path}"]
    assert api.get(container, headers=headers)[0] == 200
    assert api.get(f"{KM}/containers", headers=headers)[1]["total"] == 1
    for resp in (_payload(api, path, roles), _payload(api, path, roles, via_accept=True)):
        assert resp.status_code == 403, resp.text
        assert resp.json()["title"] == "Forbidden" and b"top secret" not in resp.content
        assert "payload retrieval attempt not allowed" in resp.json()["description"]
    code, err = api.post(f"{KM}/secrets", {"name": "x"}, headers=headers)
    assert code == 403 and "Secret creation attempt not allowed" in err["description"]
    upload = api.client.put(_secret_without_payload(api), content=b"x",
                            headers={**headers, "Content-Type": "text/plain"})
    assert upload.status_code == 403
    assert api.post(f"{KM}/containers", {"type": "generic"}, headers=headers)[0] == 403
    assert api.delete(container, headers=headers)[0] == 403
    assert api.delete(path, headers=headers)[0] == 403
    assert api.get(path, headers={**PROJECT, "X-Roles": "member"})[0] == 200  # still there


def _secret_without_payload(api: Any) -> str:
    code, body = api.post(f"{KM}/secrets", {"name": "later"},
                          headers={**PROJECT, "X-Roles": "member"})
    assert code == 201, body
    return str(body["secret_ref"].split("testserver", 1)[1])


@pytest.mark.parametrize("roles", ["made-up", "load-balancer_member", "service"])
def test_unknown_roles_are_refused(api: Any, roles: str) -> None:
    path = _secret(api)
    container = _container(api, path)
    headers = {**PROJECT, "X-Roles": roles}
    for code, _ in (api.get(path, headers=headers), api.get(f"{KM}/secrets", headers=headers),
                    api.get(path + "/metadata", headers=headers),
                    api.get(container, headers=headers),
                    api.get(f"{KM}/containers", headers=headers),
                    api.post(f"{KM}/secrets", {"name": "x"}, headers=headers),
                    api.delete(path, headers=headers)):
        assert code == 403
    assert _payload(api, path, roles).status_code == 403


def test_without_x_roles_noauth_callers_are_admin(api: Any) -> None:
    code, body = api.post(f"{KM}/secrets", {"payload": "p", "payload_content_type": "text/plain"})
    assert code == 201, body
    path = body["secret_ref"].split("testserver", 1)[1]
    assert api.client.get(path + "/payload", headers={"Accept": "text/plain"}).content == b"p"
