"""Issue 10 item 4: values the API accepted but the renderer or HAProxy refused, now escaped.

Each object is made through the API (fake drivers), rendered as the controller renders it
(certificates from the key manager included) and checked with ``haproxy -c``: before, render
raised or HAProxy refused, and the object went ERROR. url_path is percent-encoded, 70
``allowed_cidrs`` become ORed ACL lines, 30 SNI certificates a crt-list, a padded
``insert_headers`` value is read as the boolean it spells, a Latin-1 cookie name is written as
bytes, and ``persistence_timeout`` 0 means "not set" (as upstream's template reads it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_render import HAPROXY, check_bundle, render_from_api

from tls_material import issue, seal_secret

V2 = "/v2/lbaas"

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")


def created(api: Any, lb_id: str, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    code, data = api.post(f"{V2}/{path}", {kind: body})
    assert code == 201, data
    api.wait_lb(lb_id)
    return dict(data[kind])


def lines_of(bundle: Any) -> list[str]:
    return [line.strip() for line in bundle.files["haproxy.cfg"].splitlines()]


@pytest.mark.parametrize(("path", "sent"), [
    ('/a"b', "/a%22b"), ("/a\\b", "/a%5Cb"), ("/a{b}", "/a%7Bb%7D"),
    ("/a%{b}", "/a%25%7Bb%7D"), ("/é/ü", "/%C3%A9/%C3%BC"), ("/ok%20x?q=1", "/ok%20x?q=1"),
    ("/a\u200bb", "/a%E2%80%8Bb"),
])
def test_url_path_outside_rfc3986_is_percent_encoded(api: Any, tmp_path: Path, path: str,
                                                     sent: str) -> None:
    lb = api.create_lb(name="url")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    pool = created(api, lb["id"], "pools", "pool", {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    created(api, lb["id"], f"pools/{pool['id']}/members", "member",
            {"address": "10.0.0.5", "protocol_port": 80})
    hm = created(api, lb["id"], "healthmonitors", "healthmonitor", {
        "pool_id": pool["id"], "type": "HTTP", "delay": 2147483, "timeout": 2147483,
        "max_retries": 3, "url_path": path, "expected_codes": "100-999"})
    assert hm["url_path"] == path  # stored and shown as given
    bundle = render_from_api(api, lb["id"])
    assert f"http-check send meth GET uri '{sent}' ver HTTP/1.0" in lines_of(bundle)
    assert "timeout check 2147483s" in lines_of(bundle)
    assert check_bundle(bundle, tmp_path / "cfg") == ""


def test_seventy_allowed_cidrs_and_padded_header_flags(api: Any, tmp_path: Path) -> None:
    lb = api.create_lb(name="cidrs")
    cidrs = [f"10.{i}.0.0/16" for i in range(70)]
    created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80,
        "allowed_cidrs": cidrs,
        "insert_headers": {"X-Forwarded-For": "true\n", "X-Real-IP": " FALSE\t"}})
    bundle = render_from_api(api, lb["id"])
    lines = lines_of(bundle)
    acl = [x for x in lines if x.startswith("acl lbaas-allowed-cidrs src ")]
    assert sorted(n for x in acl for n in x.split()[3:]) == sorted(cidrs)
    assert all(len(x.split()) <= 64 for x in lines)
    assert "tcp-request connection reject if !lbaas-allowed-cidrs" in lines
    assert "option forwardfor" in lines
    assert not any("X-Real-IP" in x for x in lines)
    assert check_bundle(bundle, tmp_path / "cfg") == ""


def test_thirty_sni_certificates(api: Any, tmp_path: Path) -> None:
    lb = api.create_lb(name="sni")
    refs = []
    for n in range(31):
        leaf = issue(f"site{n}.example.com", names=(f"site{n}.example.com",))
        secret = seal_secret(api.service, lb["project_id"], leaf.cert_pem + leaf.key_pem)
        refs.append(f"https://keymanager.example/v1/secrets/{secret}")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": refs[0], "sni_container_refs": refs[1:],
        "tls_ciphers": "FOO:ECDHE-ECDSA-AES128-GCM-SHA256:TLS_FOO:TLS_AES_128_GCM_SHA256",
        "tls_versions": ["SSLv3", "TLSv1.2", "TLSv1.3"]})
    bundle = render_from_api(api, lb["id"])
    crt_list = bundle.files[f"certs/{listener['id']}.crtlist"].splitlines()
    assert crt_list == [f"{ref.rsplit('/', 1)[1]}.pem" for ref in refs]  # default first
    assert all(f"certs/{line}" in bundle.files for line in crt_list)
    assert check_bundle(bundle, tmp_path / "cfg") == ""


@pytest.mark.parametrize("name", ["sess\u00e9", "\u00c5ngstr\u00f6m", "sess'#$id"])
def test_latin1_cookie_names(api: Any, tmp_path: Path, name: str) -> None:
    lb = api.create_lb(name="cookie")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    created(api, lb["id"], "pools", "pool", {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": name}})
    bundle = render_from_api(api, lb["id"])
    assert any(x.startswith("stick match 'req.cook(") for x in lines_of(bundle))
    assert check_bundle(bundle, tmp_path / "cfg") == ""


def test_udp_persistence_timeout_zero_means_not_set(api: Any, tmp_path: Path) -> None:
    lb = api.create_lb(name="udp")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "UDP", "protocol_port": 53})
    pool = created(api, lb["id"], "pools", "pool", {
        "listener_id": listener["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 0}})
    created(api, lb["id"], f"pools/{pool['id']}/members", "member",
            {"address": "10.0.0.7", "protocol_port": 53})
    bundle = render_from_api(api, lb["id"])
    assert "ct timeout" not in bundle.files["nftables.conf"]
    assert "jhash ip saddr" in bundle.files["nftables.conf"]
    assert check_bundle(bundle, tmp_path / "cfg") == ""
