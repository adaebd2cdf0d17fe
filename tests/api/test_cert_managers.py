"""Where the controller gets TLS material: the local key manager (decrypting what the API
stored) and the Barbican driver (against a fake Barbican: no real one runs here)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import httpx
import pytest

from lbaas.controller.certificates import CertificateLoader
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.barbican import BarbicanCertManager, BarbicanUnavailable
from lbaas.render.tls import certificate_needs
from lbaas.store import secrets as store
from tls_material import crl, issue

KM = "/key-manager/v1"
ENDPOINT = "https://barbican.test:9311"
CERT, KEY, P12, BOX = (f"c1000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))


def _store(api: Any, payload: bytes, content_type: str = "text/plain") -> str:
    body: dict[str, Any] = {"payload_content_type": content_type}
    if content_type == "text/plain":
        body["payload"] = payload.decode()
    else:
        body.update(payload=base64.b64encode(payload).decode(), payload_content_encoding="base64")
    code, data = api.post(f"{KM}/secrets", body)
    assert code == 201, data
    return data["secret_ref"]


def test_loader_decrypts_what_the_config_names(api: Any) -> None:
    ca = issue("CA", ca=True)
    leaf = issue("www.example.com", ca, names=("www.example.com",))
    p12, ca_ref, crl_ref = (_store(api, leaf.pkcs12([ca.cert]), "application/octet-stream"),
                            _store(api, ca.cert_pem), _store(api, crl(ca)))
    gone = _store(api, leaf.pkcs12(), "application/octet-stream")
    assert api.delete(gone.split("testserver", 1)[1])[0] == 204
    aggregate = LoadBalancerSpec.from_mapping({
        "id": "lb", "project_id": api.service.settings.api.default_project_id,
        "listeners": [{"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": p12,
                       "sni_container_refs": [gone], "client_ca_tls_container_ref": ca_ref,
                       "client_crl_container_ref": crl_ref}], "pools": []})
    pems = CertificateLoader(api.service.settings, api.service.engine).load(aggregate)
    stems = {n.role: n.stem for n in certificate_needs(aggregate) if n.ref != gone}
    assert set(pems) == set(stems.values())  # the deleted secret is left out
    server = pems[stems["server"]]
    assert server.startswith(leaf.cert_pem.decode()) and ca.cert_pem.decode() in server
    assert "PRIVATE KEY" in server
    assert pems[stems["ca"]] == ca.cert_pem.decode()
    assert pems[stems["crl"]].startswith("-----BEGIN X509 CRL-----")
    other = dataclasses.replace(aggregate, project_id="someone-else")
    assert CertificateLoader(api.service.settings, api.service.engine).load(other) == {}


def fake_barbican(seen: list[httpx.Request]) -> httpx.Client:
    leaf = issue("www.example.com")
    secrets = {CERT: (leaf.cert_pem, "text/plain"), KEY: (leaf.key_pem, "text/plain"),
               P12: (leaf.pkcs12(), "application/octet-stream")}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("x-auth-token") != "tok":
            return httpx.Response(401)
        parts = request.url.path.strip("/").split("/")
        if parts[:2] == ["v1", "containers"] and parts[2] == BOX:
            return httpx.Response(200, json={"type": "certificate", "secret_refs": [
                {"name": "certificate", "secret_ref": f"{ENDPOINT}/v1/secrets/{CERT}"},
                {"name": "private_key", "secret_ref": f"{ENDPOINT}/v1/secrets/{KEY}"}]})
        if parts[:2] == ["v1", "secrets"] and parts[2] in secrets:
            data, kind = secrets[parts[2]]
            if len(parts) == 4:
                return httpx.Response(200, content=data, headers={"content-type": kind})
            return httpx.Response(200, json={"content_types": {"default": kind}})
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_barbican_driver_reads_secrets_and_containers() -> None:
    seen: list[httpx.Request] = []
    manager = BarbicanCertManager(ENDPOINT, "tok", store.parse_ref, fake_barbican(seen))
    foreign_host = manager.read_ref(f"https://elsewhere.example/v1/secrets/{P12}")
    assert foreign_host["payload"][:1] == b"0"  # DER
    container = manager.read_ref(f"{ENDPOINT}/v1/containers/{BOX}")
    assert container["certificate"].startswith(b"-----BEGIN CERTIFICATE")
    assert set(container) == {"certificate", "private_key"}
    # a ref naming another host is read from the configured endpoint: the token stays home
    assert {r.url.host for r in seen} == {"barbican.test"}
    assert seen[-1].headers["accept"] == "text/plain"
    with pytest.raises(BarbicanUnavailable):
        manager.read_ref(f"{ENDPOINT}/v1/secrets/missing")
    with pytest.raises(BarbicanUnavailable):
        BarbicanCertManager(ENDPOINT, "bad", store.parse_ref,
                            fake_barbican([])).read_ref(f"{ENDPOINT}/v1/secrets/{P12}")


def test_loader_in_barbican_mode_reads_with_one_service_token(
        service_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lbaas.controller import certificates as loader_module

    api = service_factory(certificates={"cert_manager": "barbican",
                                        "barbican_endpoint": ENDPOINT})
    seen: list[httpx.Request] = []
    tokens: list[str] = []
    monkeypatch.setattr(loader_module, "service_token",
                        lambda settings: tokens.append("tok") or "tok")
    monkeypatch.setattr(loader_module, "BarbicanCertManager",
                        lambda endpoint, token, parse: BarbicanCertManager(
                            endpoint, token, parse, fake_barbican(seen)))
    aggregate = LoadBalancerSpec.from_mapping({"id": "lb", "project_id": "p", "pools": [],
                                               "listeners": [{
        "protocol": "TERMINATED_HTTPS",
        "default_tls_container_ref": f"{ENDPOINT}/v1/secrets/{P12}",
        "sni_container_refs": [f"{ENDPOINT}/v1/containers/{BOX}"]}]})
    loader = CertificateLoader(api.service.settings, api.service.engine)
    first = loader.load(aggregate)
    assert set(loader.load(aggregate)) == set(first) and len(first) == 2
    assert all("PRIVATE KEY" in pem for pem in first.values())
    assert tokens == ["tok"]  # reused across passes
