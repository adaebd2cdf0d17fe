"""TLS rendering: golden haproxy.cfg files for TERMINATED_HTTPS and re-encrypting pools, the
certificate files in the bundle, the real ``haproxy -c`` on them with real certificates, and
refusals (a missing certificate, an unsafe cipher string).

Regenerate with ``UPDATE_GOLDEN=1 pytest tests/render/test_tls.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from render_aggregates import listener, load_balancer, member, monitor, pool, spec

from lbaas.render import RenderError, RenderOptions, render_bundle
from lbaas.render.tls import certificate_needs, ref_id
from tls_material import crl, issue

GOLDEN = Path(__file__).parent / "golden"
OPTIONS = RenderOptions()
KM = "http://127.0.0.1:9876/key-manager/v1"


def ref(n: int, kind: str = "secrets") -> str:
    return f"{KM}/{kind}/5ec00000-0000-4000-8000-{n:012d}"


def terminated_sni_mtls() -> dict[str, Any]:
    p = pool(1, "HTTP", members=[member(1, 1, "10.0.1.11", 80)])
    li = listener(1, "TERMINATED_HTTPS", 443, default_pool_id=p["id"],
                  default_tls_container_ref=ref(1),
                  sni_container_refs=[ref(2), ref(3, "containers"), ref(1)],
                  client_authentication="MANDATORY", client_ca_tls_container_ref=ref(4),
                  client_crl_container_ref=ref(5), tls_versions=["TLSv1.2", "TLSv1.3"],
                  tls_ciphers="TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:"
                              "ECDHE-RSA-AES128-GCM-SHA256",
                  alpn_protocols=["h2", "http/1.1"], hsts_max_age=31536000,
                  hsts_include_subdomains=True, hsts_preload=True,
                  insert_headers={"X-Forwarded-For": "true", "X-Forwarded-Proto": "true",
                                  "X-SSL-Client-Verify": "true", "X-SSL-Client-Has-Cert": "true",
                                  "X-SSL-Client-DN": "true", "X-SSL-Client-CN": "true",
                                  "X-SSL-Issuer": "true", "X-SSL-Client-SHA1": "true",
                                  "X-SSL-Client-Not-Before": "true",
                                  "X-SSL-Client-Not-After": "false"})
    return load_balancer(listeners=[li], pools=[p])


def terminated_optional_client_auth() -> dict[str, Any]:
    li = listener(1, "TERMINATED_HTTPS", 8443, default_tls_container_ref=ref(1),
                  client_authentication="OPTIONAL", client_ca_tls_container_ref=ref(4),
                  tls_versions=["TLSv1.3"], hsts_max_age=0)
    return load_balancer(listeners=[li])


def reencrypting_pools() -> dict[str, Any]:
    verified = pool(1, "HTTP", tls_enabled=True, tls_container_ref=ref(6),
                    ca_tls_container_ref=ref(4), crl_container_ref=ref(5),
                    tls_versions=["TLSv1.2"], tls_ciphers="ECDHE-RSA-AES256-GCM-SHA384",
                    alpn_protocols=["http/1.1"], healthmonitor=monitor(1, 1, "HTTPS"),
                    members=[member(1, 1, "10.0.1.11", 443), member(2, 1, "10.0.1.12", 443)])
    unverified = pool(2, "HTTP", tls_enabled=True, members=[member(3, 2, "10.0.1.13", 443)])
    li = listener(1, "HTTP", 80, default_pool_id=verified["id"])
    li2 = listener(2, "HTTP", 81, default_pool_id=unverified["id"])
    return load_balancer(listeners=[li, li2], pools=[verified, unverified])


def prometheus_with_tls() -> dict[str, Any]:
    li = listener(1, "PROMETHEUS", 9443, default_tls_container_ref=ref(1),
                  tls_versions=["TLSv1.2", "TLSv1.3"], allowed_cidrs=["192.0.2.0/24"])
    return load_balancer(listeners=[li])


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "tls_prometheus": prometheus_with_tls,
    "tls_terminated_sni_mtls": terminated_sni_mtls,
    "tls_terminated_optional_client_auth": terminated_optional_client_auth,
    "tls_reencrypting_pools": reencrypting_pools,
}


@pytest.fixture(scope="module")
def pems() -> dict[str, str]:
    """Real PEMs for every stem the scenarios use (server chains with keys, CA, CRL)."""
    ca = issue("render CA", ca=True)
    out: dict[str, str] = {}
    for name in SCENARIOS:
        for need in certificate_needs(spec(SCENARIOS[name]())):
            if need.role == "server":
                leaf = issue(f"{need.stem[-2:]}.example.com", ca, names=(f"{need.stem}.test",))
                out[need.stem] = (leaf.cert_pem + ca.cert_pem + leaf.key_pem).decode()
            elif need.role == "ca":
                out[need.stem] = ca.cert_pem.decode()
            else:
                out[need.stem] = crl(ca).decode()
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_golden_file(name: str, pems: dict[str, str]) -> None:
    bundle = render_bundle(spec(SCENARIOS[name]()), OPTIONS, certificates=pems)
    text = bundle.files["haproxy.cfg"]
    path = GOLDEN / f"{name}.cfg"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()
    lb = SCENARIOS[name]()
    stems = [n.stem for n in certificate_needs(spec(lb))]
    # Each TLS listener names its certificates in a crt-list: default first, then SNI.
    lists = {f"certs/{li['id']}.crtlist": "".join(
        f"{ref_id(r)}.pem\n" for r in dict.fromkeys(
            [li["default_tls_container_ref"], *(li.get("sni_container_refs") or [])]) if r)
        for li in lb["listeners"] if li.get("default_tls_container_ref")}
    assert sorted(bundle.files) == sorted(["haproxy.cfg", *(f"certs/{s}.pem" for s in stems),
                                           *lists])
    for stem in stems:
        assert bundle.files[f"certs/{stem}.pem"] == pems[stem]
    for path, content in lists.items():
        assert bundle.files[path] == content


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_bundle_passes_haproxy_check(name: str, pems: dict[str, str], tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    bundle = render_bundle(spec(SCENARIOS[name]()), OPTIONS, certificates=pems)
    for rel, text in bundle.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    env = {**os.environ, "LBAAS_RUN_DIR": str(tmp_path), "LBAAS_CONF_DIR": str(tmp_path)}
    result = subprocess.run([haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")],
                            capture_output=True, text=True, env=env, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]" not in output and "[ALERT]" not in output, output


def test_a_new_certificate_changes_the_digest(pems: dict[str, str]) -> None:
    lb = terminated_optional_client_auth()
    stem = certificate_needs(spec(lb))[0].stem
    before = render_bundle(spec(lb), OPTIONS, certificates=pems)
    other = issue("replacement.example.com")
    after = render_bundle(spec(lb), OPTIONS, certificates={
        **pems, stem: (other.cert_pem + other.key_pem).decode()})
    assert before.files["haproxy.cfg"] == after.files["haproxy.cfg"]
    assert before.digest != after.digest


def test_missing_certificate_is_refused(pems: dict[str, str]) -> None:
    lb = terminated_sni_mtls()
    stem = certificate_needs(spec(lb))[0].stem
    with pytest.raises(RenderError, match="not available"):
        render_bundle(spec(lb), OPTIONS, certificates={k: v for k, v in pems.items() if k != stem})


@pytest.mark.parametrize("ciphers", ["AES128 crt /etc/passwd", "AES\nbind", "A'B", "A\"B"])
def test_unsafe_cipher_strings_are_refused(ciphers: str, pems: dict[str, str]) -> None:
    lb = terminated_optional_client_auth()
    lb["listeners"][0]["tls_ciphers"] = ciphers
    with pytest.raises(RenderError):
        render_bundle(spec(lb), OPTIONS, certificates=pems)


def test_refs_must_end_in_an_id(pems: dict[str, str]) -> None:
    lb = terminated_optional_client_auth()
    lb["listeners"][0]["default_tls_container_ref"] = f"{KM}/secrets/../../etc/passwd"
    with pytest.raises(RenderError):
        render_bundle(spec(lb), OPTIONS, certificates=pems)


HOSTILE = ["TLSv1.2\n    server evil 192.0.2.99:80", "h2 crt /etc/passwd", "x'y", "a\x00b"]
TLS_LIST_FIELDS = [("listener", "tls_versions"), ("listener", "alpn_protocols"),
                   ("pool", "tls_versions"), ("pool", "alpn_protocols")]


@pytest.mark.parametrize(("owner", "field"), TLS_LIST_FIELDS)
@pytest.mark.parametrize("value", HOSTILE)
def test_tls_list_fields_cannot_inject(owner: str, field: str, value: str,
                                       pems: dict[str, str]) -> None:
    lb = terminated_optional_client_auth() if owner == "listener" else reencrypting_pools()
    target = lb["listeners"][0] if owner == "listener" else lb["pools"][0]
    target[field] = ["TLSv1.2" if field == "tls_versions" else "h2", value]
    try:
        cfg = render_bundle(spec(lb), OPTIONS, certificates=pems).files["haproxy.cfg"]
    except RenderError:
        return
    assert "evil" not in cfg and "/etc/passwd" not in cfg and "x'y" not in cfg, cfg


@pytest.mark.parametrize("value", ["AES128 crt /etc/passwd", "AES\nbind :1", "A'B"])
def test_pool_cipher_strings_cannot_inject(value: str, pems: dict[str, str]) -> None:
    lb = reencrypting_pools()
    lb["pools"][0]["tls_ciphers"] = value
    with pytest.raises(RenderError):
        render_bundle(spec(lb), OPTIONS, certificates=pems)
