"""The key manager with Keystone: secrets belong to the token's project, whatever the headers,
and a listener can use only its own project's certificates."""

from __future__ import annotations

import base64
from typing import Any

from tls_material import issue

KM = "/key-manager/v1"


def test_secrets_are_scoped_to_the_token_project(keystone_api: Any) -> None:
    users = keystone_api()
    a, b = users["member-a"], users["member-b"]
    p12 = issue("www.example.com", names=("www.example.com",)).pkcs12()
    code, body = a.post(f"{KM}/secrets", {
        "name": "tls_secret1", "payload": base64.b64encode(p12).decode(),
        "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64"})
    assert code == 201, body
    ref = body["secret_ref"]
    path = ref.split("testserver", 1)[1]
    assert users.anonymous.get(f"{KM}/secrets")[0] == 401
    assert b.get(path)[0] == 404
    assert b.get(f"{KM}/secrets")[1]["total"] == 0
    assert a.get(f"{KM}/secrets")[1]["total"] == 1
    resp = a.client.get(path + "/payload", headers={**a.headers,
                                                    "Accept": "application/octet-stream"})
    assert resp.status_code == 200 and resp.content == p12
    listener = {"protocol": "TERMINATED_HTTPS", "protocol_port": 443,
                "default_tls_container_ref": ref}
    lb_b = b.create_lb(name="lb-b")
    code, err = b.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_b["id"], **listener}})
    assert code == 400 and err["faultstring"] == f"Could not retrieve certificate: ['{ref}']"
    lb_a = a.create_lb(name="lb-a")
    assert b.get(path, headers={"X-Project-Id": lb_a["project_id"]})[0] == 404  # spoofing
    code, body = a.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_a["id"], **listener}})
    assert code == 201, body
    assert b.delete(path)[0] == 404 and a.delete(path)[0] == 204


def test_secret_roles_follow_barbican_defaults(keystone_api: Any) -> None:
    """member/admin create, decrypt and delete; reader sees metadata only; Octavia's own roles
    and unknown roles are refused, though the token is for the right project."""
    users = keystone_api()
    member = users["member-a"]
    code, body = member.post(f"{KM}/secrets", {"name": "k", "payload": "top secret",
                                               "payload_content_type": "text/plain"})
    assert code == 201, body
    path = body["secret_ref"].split("testserver", 1)[1]

    def payload(user: str) -> Any:
        client = users[user]
        return client.client.get(path + "/payload",
                                 headers={**client.headers, "Accept": "text/plain"})

    assert payload("member-a").content == b"top secret"
    assert payload("admin-a").content == b"top secret"
    reader = users["reader-a"]
    assert reader.get(path)[0] == 200 and reader.get(f"{KM}/secrets")[1]["total"] == 1
    resp = payload("reader-a")
    assert resp.status_code == 403 and b"top secret" not in resp.content
    assert reader.post(f"{KM}/secrets", {"name": "r"})[0] == 403
    assert reader.delete(path)[0] == 403
    for user in ("unrelated-a", "observer-a", "lbmember-a"):
        assert users[user].get(path)[0] == 403, user
        assert users[user].get(f"{KM}/secrets")[0] == 403, user
        assert payload(user).status_code == 403, user
        assert users[user].post(f"{KM}/secrets", {"name": "u"})[0] == 403, user
        assert users[user].delete(path)[0] == 403, user
    assert users["admin-a"].delete(path)[0] == 204
