"""``render.validate`` gives HAProxy's own verdict: each case is also put to ``haproxy -c``.

The API refuses what these rules refuse; if PCRE2 or OpenSSL through ctypes ever disagreed with
the HAProxy on this machine (another library, other flags), a case here fails. Regexes go in
the ACL form render writes (``-m reg``, with ``-i`` for HOST_NAME); cipher strings and
versions on a TLS bind line and on a server line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from api_render import HAPROXY

from lbaas.render import validate
from lbaas.render.escaping import quote
from tls_material import universal

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

REGEXES = [r"\u0041", "a{70000}", "a{65535}", "(?a)x", "[[:foo:]]", "[[:alpha:]]", r"(a)\1",
           "(?P<n>a)(?P=n)", r"[\w-.]", r"\N{DIGIT ONE}", r"\p{L}+", "x{,3}", "(?<=ab)c",
           "a++", "(?i)ABC", "(" * 251 + ")" * 251, "é+", r"\x{100}", r"\o{777}", "[z-a]",
           r"(?<name>x)\k<name>", r"\Qa.b\E", "(?|(a)|(b))", r"\R", "(*UTF)é", "(*CR)a"]
CIPHERS = ["FOO", "FOO:AES128-SHA", "RC4-MD5", "eNULL", "aNULL", "@SECLEVEL=0:ALL",
           "DEFAULT:!ALL", "ECDHE-ECDSA-AES128-GCM-SHA256", "DES-CBC3-SHA", "NULL-SHA",
           "kRSA", "PSK-AES128-CBC-SHA", "HIGH:!aNULL", "TLS_FOO",
           "TLS_AES_128_GCM_SHA256", "TLS_FOO:TLS_AES_256_GCM_SHA384", "TLS_AES_128_CCM_SHA256",
           "FOO:TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256:DEFAULT"]
VERSIONS = [["SSLv3"], ["SSLv3", "TLSv1"], ["TLSv1"], ["TLSv1.3"], ["SSLv3", "TLSv1.3"],
            ["TLSv1.1", "TLSv1.2"]]
HAPROXY_VERSIONS = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1",
                    "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}


def haproxy_accepts(tmp_path: Path, frontend: list[str], server: str = "",
                    backend: tuple[str, ...] = ()) -> bool:
    (tmp_path / "cert.pem").write_bytes(universal())
    cfg = "\n".join([
        "defaults", "    mode http", "    timeout connect 1s", "    timeout client 1s",
        "    timeout server 1s", "frontend f", "    bind 127.0.0.1:1", *frontend,
        "    default_backend b", "backend b", *backend, f"    server s 127.0.0.1:2{server}",
        ""])
    (tmp_path / "haproxy.cfg").write_text(cfg)
    env = {**os.environ, "LBAAS_CONF_DIR": str(tmp_path)}
    result = subprocess.run([str(HAPROXY), "-c", "-f", str(tmp_path / "haproxy.cfg")],
                            capture_output=True, text=True, env=env, timeout=30)
    return result.returncode == 0


@pytest.mark.parametrize("caseless", [False, True])
@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_verdict_is_haproxys(tmp_path: Path, pattern: str, caseless: bool) -> None:
    flags = "-i " if caseless else ""
    acl = f"    acl r1 path {flags}-m reg -- {quote(pattern)}"
    accepted = haproxy_accepts(tmp_path, [acl, "    http-request deny if r1"])
    assert (validate.regex_error(pattern, caseless) is None) == accepted


@pytest.mark.parametrize("ciphers", CIPHERS)
def test_cipher_verdict_is_haproxys(tmp_path: Path, ciphers: str) -> None:
    v12, v13 = validate.split_ciphers(ciphers)
    words = ([f"ciphers {':'.join(v12)}"] if v12 else []) + \
        ([f"ciphersuites {':'.join(v13)}"] if v13 else [])
    crt = '"${LBAAS_CONF_DIR}/cert.pem"'
    bind = f"    bind 127.0.0.1:3 ssl crt {crt} {' '.join(words)}"
    on_bind = haproxy_accepts(tmp_path, [bind])
    on_server = haproxy_accepts(tmp_path, [], f" ssl verify none {' '.join(words)}")
    assert (validate.ciphers_error(ciphers) is None) == on_bind == on_server


@pytest.mark.parametrize("versions", VERSIONS)
def test_version_verdict_is_haproxys(tmp_path: Path, versions: list[str]) -> None:
    span = validate.version_range(versions)
    words = f"ssl-min-ver {HAPROXY_VERSIONS[span[0]]} ssl-max-ver {HAPROXY_VERSIONS[span[-1]]}"
    crt = '"${LBAAS_CONF_DIR}/cert.pem"'
    on_bind = haproxy_accepts(tmp_path, [f"    bind 127.0.0.1:3 ssl crt {crt} {words}"])
    on_server = haproxy_accepts(tmp_path, [], f" ssl verify none {words}")
    assert (validate.tls_versions_error(versions) is None) == on_bind == on_server


@pytest.mark.parametrize("seconds", [0, 1, validate.MAX_TIMER_S, validate.MAX_TIMER_S + 1])
def test_timer_limit_is_haproxys(tmp_path: Path, seconds: int) -> None:
    accepted = haproxy_accepts(tmp_path, [], f" check inter {max(seconds, 1)}s")
    assert accepted == (seconds <= validate.MAX_TIMER_S)


@pytest.mark.parametrize("codes", ["100-999", "999-100", "200-200", "000", "200,204"])
def test_expected_codes_verdict_is_haproxys(tmp_path: Path, codes: str) -> None:
    accepted = haproxy_accepts(tmp_path, [], " check", ("    option httpchk",
                                                        f"    http-check expect status {codes}"))
    assert (validate.expected_codes_error(codes) is None) == accepted
