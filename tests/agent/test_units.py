"""Pure parts of the agent contract: bundle/path validation, the runtime-change planner, the CA."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lbaas.agent.runtime_diff import adds_http_server, runtime_plan
from lbaas.agent.stats import parse_show_stat
from lbaas.certs import CertificateAuthority
from lbaas.wire.agent_api import Bundle, WireError, check_relpath


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../b", "a//b", "./a", "a/.", "", "n\x00ul",
                                  "back\\slash", ".digest", "certs/.hidden"])
def test_unsafe_relpaths_are_refused(path: str) -> None:
    with pytest.raises(WireError):
        check_relpath(path)


def test_bundle_parsing() -> None:
    good = {"digest": "abc", "files": {"haproxy.cfg": "x", "certs/a.pem": "y"}}
    assert Bundle.from_json(good).files == good["files"]
    for bad in ({"digest": "abc", "files": {"certs/a.pem": "y"}},  # no haproxy.cfg
                {"digest": "", "files": {"haproxy.cfg": "x"}},
                {"digest": "a b", "files": {"haproxy.cfg": "x"}},
                {"digest": "abc", "files": {"haproxy.cfg": 3}},
                {"digest": "abc", "files": {"haproxy.cfg": "x", "a": "1", "a/b": "2"}},
                ["not", "an", "object"]):
        with pytest.raises(WireError):
            Bundle.from_json(bad)


def _cfg(servers: list[str], frontend: str = "bind :80", extra: str = "") -> str:
    return "\n".join(["global", "  maxconn 100", "frontend fe", f"  {frontend}",
                      "  default_backend pool", "backend pool", "  balance roundrobin",
                      *([f"  {extra}"] if extra else []), *[f"  server {s}" for s in servers]])


def test_runtime_plan_for_member_changes() -> None:
    old = _cfg(["m1 10.0.0.1:80 weight 1", "m2 10.0.0.2:80 weight 1 check inter 5s"])
    assert runtime_plan(old, old + "\n# comment\n") == []
    assert runtime_plan(old, _cfg(["m1 10.0.0.1:80 weight 7",
                                   "m2 10.0.0.2:80 weight 1 disabled check inter 5s"])) == [
        "set server pool/m1 weight 7", "set server pool/m2 state maint"]
    assert runtime_plan(old, _cfg(["m2 10.0.0.2:80 weight 1 check inter 5s",
                                   "m3 10.0.0.3:80 weight 2 check inter 5s"])) == [
        "add server pool/m3 10.0.0.3:80 check inter 5s weight 2",
        "enable health pool/m3", "enable server pool/m3",
        "set server pool/m1 state maint", "shutdown sessions server pool/m1",
        "del server pool/m1"]


@pytest.mark.parametrize("new", [
    _cfg(["m1 10.0.0.1:80 weight 1"], frontend="bind :81"),  # not a server line
    _cfg(["m1 10.0.0.9:80 weight 1"]),  # address change
    _cfg(["m1 10.0.0.1:80 weight 1 backup"]),  # option change
    _cfg(["m1 10.0.0.1:80 weight 1", "m2 10.0.0.2:80 weight 1"], extra="default-server inter 1s"),
    _cfg(["m1 10.0.0.1:80 weight 1", 'm2 "10.0.0.2:80" weight 1']),  # quoting: be careful
    _cfg(["m1 10.0.0.1:80 weight 1", "m1 10.0.0.2:80 weight 1"]),  # duplicate name
])
def test_runtime_plan_refuses_what_it_cannot_prove(new: str) -> None:
    assert runtime_plan(_cfg(["m1 10.0.0.1:80 weight 1"]), new) is None


def test_reload_follows_only_additions_to_http_backends() -> None:
    add = ["add server pool/m3 10.0.0.3:80 weight 1", "enable server pool/m3"]
    tcp, http = _cfg([]), _cfg([], extra="mode http")
    assert adds_http_server(http, add)
    assert not adds_http_server(tcp, add)
    assert adds_http_server("defaults\n  mode http\n" + tcp, add)
    assert not adds_http_server("defaults\n  mode http\n" + _cfg([], extra="mode tcp"), add)
    assert not adds_http_server(http, ["set server pool/m1 weight 2"])
    assert not adds_http_server(http, [])


def test_show_stat_parsing() -> None:
    text = ("# pxname,svname,scur,status,weight,check_desc\n"
            "fe,FRONTEND,3,OPEN,,\n"
            "pool,m1,0,UP,2,Layer4 check passed\n")
    assert parse_show_stat(text) == {
        "fe/FRONTEND": {"pxname": "fe", "svname": "FRONTEND", "scur": 3, "status": "OPEN"},
        "pool/m1": {"pxname": "pool", "svname": "m1", "scur": 0, "status": "UP", "weight": 2,
                    "check_desc": "Layer4 check passed"}}


def test_ca_is_created_once_with_private_key_mode_0600(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    again = CertificateAuthority.load_or_create(tmp_path / "ca")
    assert again.ca_pem == ca.ca_pem
    assert "PRIVATE" not in repr(ca)

    cert_pem, key_pem = ca.issue_server("amp-1", "192.0.2.7", 30)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    cert.verify_directly_issued_by(ca.certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    assert san.get_values_for_type(x509.DNSName) == ["amp-1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert "PRIVATE KEY" in key_pem

    files = ca.ensure_client_files("controller", tmp_path / "client")
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    first = files.cert_file.read_text()
    assert ca.ensure_client_files("controller", tmp_path / "client").cert_file.read_text() == first
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    renewed = other.ensure_client_files("controller", tmp_path / "client")
    assert renewed.cert_file.read_text() != first  # a certificate from another CA is replaced
