"""The key-manager (Barbican v1 subset) API and listeners/pools that use its refs."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from lbaas.main.clouds import clouds_yaml
from lbaas.store import tables as t
from tls_material import crl, issue

KM = "/key-manager/v1"
LISTENERS = "/v2/lbaas/listeners"


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    ca = issue("test CA", ca=True)
    server = issue("www.example.com", ca, names=("www.example.com",))
    other = issue("other CA", ca=True)
    return {"ca": ca, "server": server, "crl": crl(ca), "other_crl": crl(other)}


def store(api: Any, payload: bytes, content_type: str = "application/octet-stream",
          name: str = "s", **headers: str) -> str:
    body = {"name": name, "payload_content_type": content_type}
    if content_type == "text/plain":
        body["payload"] = payload.decode()
    else:
        body.update(payload=base64.b64encode(payload).decode(), payload_content_encoding="base64")
    code, data = api.post(f"{KM}/secrets", body, headers=headers)
    assert code == 201, data
    return data["secret_ref"]


def test_store_list_get_payload_delete(api: Any, pki: dict[str, Any]) -> None:
    p12 = pki["server"].pkcs12()
    ref = store(api, p12, name="tls_secret1")
    assert ref.startswith(f"http://testserver{KM}/secrets/")
    code, listed = api.get(f"{KM}/secrets", params={"name": "tls_secret1"})
    assert code == 200 and listed["total"] == 1
    assert listed["secrets"][0]["secret_ref"] == ref
    assert listed["secrets"][0]["content_types"] == {"default": "application/octet-stream"}
    assert "payload" not in listed["secrets"][0]
    path = ref.split("testserver", 1)[1]
    resp = api.client.get(path + "/payload", headers={"Accept": "application/octet-stream"})
    assert resp.status_code == 200 and resp.content == p12
    assert resp.headers["content-type"] == "application/octet-stream"
    with api.service.engine.connect() as conn:  # encrypted at rest
        stored = conn.execute(select(t.secret.c.payload)).scalar_one()
    assert base64.b64encode(p12).decode()[:40] not in stored and p12[:40].hex() not in stored
    assert api.delete(path)[0] == 204
    code, body = api.get(path)
    assert code == 404 and body["code"] == 404 and body["title"] == "Not Found"


def test_expiration_is_kept(api: Any) -> None:
    code, data = api.post(f"{KM}/secrets", {"payload": "x", "payload_content_type": "text/plain",
                                            "expiration": "2999-01-02T03:04:05Z"})
    assert code == 201, data
    shown = api.get(data["secret_ref"].split("testserver", 1)[1])[1]
    assert shown["expiration"].startswith("2999-01-02T03:04:05")


def test_two_step_store(api: Any, pki: dict[str, Any]) -> None:
    code, data = api.post(f"{KM}/secrets", {"name": "later"})
    assert code == 201, data
    path = data["secret_ref"].split("testserver", 1)[1]
    assert "content_types" not in api.get(path)[1]
    assert api.get(path + "/payload")[0] == 404
    p12 = pki["server"].pkcs12()
    resp = api.client.put(path, content=p12, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    assert api.client.get(path + "/payload").content == p12
    again = api.client.put(path, content=b"x", headers={"Content-Type": "text/plain"})
    assert again.status_code == 409 and again.json()["title"] == "Conflict"


def test_secrets_are_scoped_to_the_project(api: Any, pki: dict[str, Any]) -> None:
    ref = store(api, pki["server"].cert_pem, "text/plain", **{"X-Project-Id": "alice"})
    path = ref.split("testserver", 1)[1]
    assert api.get(path, headers={"X-Project-Id": "bob"})[0] == 404
    assert api.get(path + "/payload", headers={"X-Project-Id": "bob"})[0] == 404
    assert api.delete(path, headers={"X-Project-Id": "bob"})[0] == 404
    assert api.get(f"{KM}/secrets", headers={"X-Project-Id": "bob"})[1]["total"] == 0
    resp = api.client.get(path + "/payload", headers={"X-Project-Id": "alice",
                                                      "Accept": "text/plain"})
    assert resp.content == pki["server"].cert_pem


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"payload": "!!", "payload_content_type": "application/octet-stream",
      "payload_content_encoding": "base64"}, 400, "payload_content_encoding"),
    ({"payload": "abc"}, 400, "'payload_content_type' must also be supplied"),
    ({"payload": "", "payload_content_type": "text/plain"}, 400, "must be non empty"),
    ({"payload": "YQ==", "payload_content_type": "application/octet-stream"}, 400, "base64"),
    ({"secret_type": "banana"}, 400, "secret_type"),
    ({"expiration": "2001-01-01T00:00:00Z"}, 400, "before current time"),
    ({"expiration": "soon"}, 400, "Invalid date"),
    ({"payload": "A" * 30000, "payload_content_type": "text/plain"}, 413, "too large"),
])
def test_store_rejects_bad_bodies(api: Any, body: dict[str, Any], status: int,
                                  words: str) -> None:
    code, data = api.post(f"{KM}/secrets", body)
    assert code == status and words in data["description"], data


def test_certificate_container(api: Any, pki: dict[str, Any]) -> None:
    cert = store(api, pki["server"].cert_pem, "text/plain")
    key = store(api, pki["server"].key_pem, "text/plain")
    code, data = api.post(f"{KM}/containers", {
        "type": "certificate", "name": "c1",
        "secret_refs": [{"name": "certificate", "secret_ref": cert},
                        {"name": "private_key", "secret_ref": key}]})
    assert code == 201, data
    path = data["container_ref"].split("testserver", 1)[1]
    code, shown = api.get(path)
    assert code == 200 and shown["type"] == "certificate"
    assert {s["name"]: s["secret_ref"] for s in shown["secret_refs"]} == {
        "certificate": cert, "private_key": key}
    code, err = api.post(f"{KM}/containers", {
        "type": "certificate", "secret_refs": [{"name": "private_key", "secret_ref": key}]})
    assert code == 400 and "'certificate' secret" in err["description"]
    code, err = api.post(f"{KM}/containers", {"type": "certificate", "secret_refs": [
        {"name": "certificate", "secret_ref": f"{KM}/secrets/nope"}]})
    assert code == 404 and "doesn't exist" in err["description"]
    assert api.get(f"{KM}/containers")[1]["total"] == 1
    assert api.delete(path)[0] == 204 and api.get(path)[0] == 404


def test_version_documents_and_clouds_yaml(api: Any) -> None:
    code, body = api.get("/key-manager/v1")
    assert code == 200 and body["version"]["max_version"] == "1.1"
    assert api.get("/key-manager")[0] == 300
    cloud = yaml.safe_load(clouds_yaml(api.service.settings))["clouds"]["lbaas"]
    assert cloud["auth"]["auth_url"].endswith("/identity/v3")  # noauth: the server's own
    assert cloud["key_manager_endpoint_override"].endswith("/key-manager/v1")


def _listener(api: Any, lb: dict[str, Any], **fields: Any) -> tuple[int, Any]:
    return api.post(LISTENERS, {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        **fields}})


def test_listener_refs_are_parsed(api: Any, pki: dict[str, Any],
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lb = api.create_lb()
    server = pki["server"]
    p12 = store(api, server.pkcs12([pki["ca"].cert]))
    pem = store(api, server.cert_pem + pki["ca"].cert_pem + server.key_pem, "text/plain")
    code, data = _listener(api, lb, default_tls_container_ref=p12, sni_container_refs=[pem])
    assert code == 201, data
    api.wait_lb(lb["id"])
    cert = store(api, server.cert_pem, "text/plain")
    key = store(api, server.key_pem, "text/plain")
    _, cont = api.post(f"{KM}/containers", {"type": "certificate", "secret_refs": [
        {"name": "certificate", "secret_ref": cert}, {"name": "private_key", "secret_ref": key}]})
    ca = store(api, pki["ca"].cert_pem, "text/plain")
    good_crl = store(api, pki["crl"], "text/plain")
    code, data = _listener(api, lb, protocol_port=8443,
                           default_tls_container_ref=cont["container_ref"],
                           client_ca_tls_container_ref=ca, client_crl_container_ref=good_crl,
                           client_authentication="MANDATORY")
    assert code == 201, data
    api.wait_lb(lb["id"])
    # unreadable: a certificate without its key, a foreign CRL, garbage instead of PKCS12
    code, err = _listener(api, lb, protocol_port=9443, default_tls_container_ref=cert)
    assert code == 400 and err["faultstring"] == f"Could not retrieve certificate: ['{cert}']"
    code, err = _listener(api, lb, protocol_port=9443, default_tls_container_ref=key)
    assert code == 400 and "BEGIN" not in err["faultstring"]
    junk = store(api, b"\x30\x03\x02\x01\x03")
    code, err = _listener(api, lb, protocol_port=9443, default_tls_container_ref=junk)
    assert code == 400 and err["faultstring"].startswith("The PKCS12 bundle is unreadable.")
    bad_crl = store(api, pki["other_crl"], "text/plain")
    code, err = _listener(api, lb, protocol_port=9443, default_tls_container_ref=p12,
                          client_ca_tls_container_ref=ca, client_crl_container_ref=bad_crl)
    assert code == 400 and "The CRL specified is not valid" in err["faultstring"]
    code, err = _listener(api, lb, protocol_port=9443, default_tls_container_ref=p12,
                          client_ca_tls_container_ref=key)
    assert code == 400 and "CA certificate is invalid" in err["faultstring"]
    key_body = server.key_pem.decode().splitlines()[1]
    assert key_body not in caplog.text


def test_pool_client_certificate_ref(api: Any, pki: dict[str, Any]) -> None:
    lb = api.create_lb()
    good = store(api, pki["server"].pkcs12())
    bad = store(api, pki["ca"].cert_pem, "text/plain")
    for ref, status in ((bad, 400), (good, 201)):
        code, data = api.post("/v2/lbaas/pools", {"pool": {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "tls_enabled": True, "tls_container_ref": ref}})
        assert code == status, data
        api.wait_lb(lb["id"])
