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
