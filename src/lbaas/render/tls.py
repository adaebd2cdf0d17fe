"""TLS pieces of haproxy.cfg: TERMINATED_HTTPS binds, HSTS, X-SSL-* headers, re-encrypting pools.

Pure like the rest of ``render``: the controller reads and decrypts the secrets and passes PEM
texts in a ``certificates`` mapping keyed by file stem (``certificate_needs`` says which stems
a load balancer needs and from which refs). Files go into the bundle as ``certs/<stem>.pem``
and are named in the config as ``"${LBAAS_CONF_DIR}/certs/<stem>.pem"`` (the agent sets the
variable to the active config directory, so a new certificate arrives with a new directory and
a hitless reload). Key choices: a listener's certificates (default first, then SNI) are a
``crt-list`` file ``certs/<listener id>.crtlist`` of bare file names, resolved by a global
``crt-base "${LBAAS_CONF_DIR}/certs"`` (HAProxy expands variables in the configuration, not in
a crt-list): HAProxy indexes each certificate by its CN/SAN names and the first is the default,
as with several ``crt`` words, but any number fits (a bind line holds at most 64 words, so 30
``crt`` did not); ``tls_versions`` become ``ssl-min-ver``/``ssl-max-ver``; ``tls_ciphers`` is
split into TLS 1.3 ``ciphersuites`` (``TLS_*``) and ``ciphers``. Cipher strings and versions
must pass ``render.validate`` (OpenSSL's own verdict), as at the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from lbaas.domain import constants as c
from lbaas.domain.spec import ListenerSpec, LoadBalancerSpec, PoolSpec
from lbaas.render import escaping as e
from lbaas.render import validate
from lbaas.render.escaping import RenderError
from lbaas.render.validate import MAX_INT32

CERT_DIR = "certs"
CRT_BASE = f'crt-base "${{LBAAS_CONF_DIR}}/{CERT_DIR}"'
HAPROXY_VERSIONS = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1",
                    "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
VERIFY = {"OPTIONAL": "optional", "MANDATORY": "required"}
SSL_HEADER_LINES = {
    "X-SSL-Client-Verify": "http-request set-header X-SSL-Client-Verify %[ssl_c_verify]",
    "X-SSL-Client-Has-Cert": "http-request set-header X-SSL-Client-Has-Cert %[ssl_c_used]",
    "X-SSL-Client-DN": "http-request set-header X-SSL-Client-DN %{+Q}[ssl_c_s_dn]",
    "X-SSL-Client-CN": "http-request set-header X-SSL-Client-CN %{+Q}[ssl_c_s_dn(cn)]",
    "X-SSL-Issuer": "http-request set-header X-SSL-Issuer %{+Q}[ssl_c_i_dn]",
    "X-SSL-Client-SHA1": "http-request set-header X-SSL-Client-SHA1 %{+Q}[ssl_c_sha1,hex]",
    "X-SSL-Client-Not-Before":
        "http-request set-header X-SSL-Client-Not-Before %{+Q}[ssl_c_notbefore]",
    "X-SSL-Client-Not-After":
        "http-request set-header X-SSL-Client-Not-After %{+Q}[ssl_c_notafter]",
}


class CertificateNeed(NamedTuple):
    stem: str  # file name without .pem
    role: str  # "server" (certificate chain + key), "ca" or "crl"
    ref: str  # the secret or container ref to read it from


def ref_id(ref: Any) -> str:
    """The UUID at the end of a secret/container ref (refs are matched by it, as the API does)."""
    text = ref.rstrip("/").rsplit("/", 1)[-1] if isinstance(ref, str) else ref
    return e.ident("certificate ref", text)


def _stem(role: str, ref: str) -> str:
    return ref_id(ref) if role == "server" else f"{role}-{ref_id(ref)}"


def terminates_tls(listener: ListenerSpec) -> bool:
    protocol = listener.protocol
    return protocol == "TERMINATED_HTTPS" or (
        protocol == "PROMETHEUS" and bool(listener.default_tls_container_ref))


def _listener_refs(listener: ListenerSpec) -> list[tuple[str, str]]:
    out = [("server", listener.default_tls_container_ref)]
    out += [("server", r) for r in e.items("sni_container_refs",
                                           listener.sni_container_refs)]
    out += [("ca", listener.client_ca_tls_container_ref),
            ("crl", listener.client_crl_container_ref)]
    return [(role, ref) for role, ref in out if ref]


def _pool_refs(pool: PoolSpec) -> list[tuple[str, str]]:
    out = [("server", pool.tls_container_ref), ("ca", pool.ca_tls_container_ref),
           ("crl", pool.crl_container_ref)]
    return [(role, ref) for role, ref in out if ref]


def certificate_needs(lb: LoadBalancerSpec) -> list[CertificateNeed]:
    """Every certificate file the load balancer's config names, once each, sorted by stem."""
    pairs = [p for li in e.by_id(lb.listeners) if terminates_tls(li)
             for p in _listener_refs(li)]
    pairs += [p for pool in e.by_id(lb.pools)
              if e.flag("pool tls_enabled", pool.tls_enabled) for p in _pool_refs(pool)]
    needs = {_stem(role, ref): CertificateNeed(_stem(role, ref), role, ref) for role, ref in pairs}
    return [needs[k] for k in sorted(needs)]


def certificate_files(lb: LoadBalancerSpec, certificates: Mapping[str, str]) -> dict[str, str]:
    """Bundle files for the certificates the config names (``certs/<stem>.pem``) and each TLS
    listener's ``certs/<listener id>.crtlist``."""
    files = {}
    for need in certificate_needs(lb):
        pem = _pem(certificates, need.stem)
        files[f"{CERT_DIR}/{need.stem}.pem"] = pem
    for listener in e.by_id(lb.listeners):
        if terminates_tls(listener):
            stems = [_stem("server", ref) for ref in _server_refs(listener)]
            if stems:
                lid = e.ident("listener id", listener.id)
                files[_crt_list(lid)] = "".join(f"{stem}.pem\n" for stem in stems)
    return files


def needs_crt_base(lb: LoadBalancerSpec) -> bool:
    """Whether haproxy.cfg's global section needs ``CRT_BASE`` (some listener has a crt-list)."""
    return any(terminates_tls(li) and _server_refs(li)
               for li in e.by_id(lb.listeners))


def _crt_list(listener_id: str) -> str:
    return f"{CERT_DIR}/{listener_id}.crtlist"


def _server_refs(listener: ListenerSpec) -> list[str]:
    """Default certificate first, then SNI, each once (order matters to HAProxy)."""
    refs = [listener.default_tls_container_ref,
            *e.items("sni_container_refs", listener.sni_container_refs)]
    return list(dict.fromkeys(r for r in refs if r))


def _pem(certificates: Mapping[str, str], stem: str) -> str:
    pem = certificates.get(stem)
    if not isinstance(pem, str) or "-----BEGIN" not in pem or "\x00" in pem:
        raise RenderError(f"certificate {stem}: not available")
    return pem if pem.endswith("\n") else pem + "\n"


def _path(certificates: Mapping[str, str], role: str, ref: str) -> str:
    stem = _stem(role, ref)
    _pem(certificates, stem)
    return f'"${{LBAAS_CONF_DIR}}/{CERT_DIR}/{stem}.pem"'


def _ciphers(field: str, value: Any) -> list[str]:
    if not value:
        return []
    if not isinstance(value, str):
        raise RenderError(f"{field}: expected a string")
    why = validate.ciphers_error(value)
    if why is not None:
        raise RenderError(f"{field}: {why}")
    v12, v13 = validate.split_ciphers(value)
    return ([f"ciphers {':'.join(v12)}"] if v12 else []) + \
        ([f"ciphersuites {':'.join(v13)}"] if v13 else [])


def _versions(field: str, value: Any) -> list[str]:
    versions = [e.choice(field, v, c.TLS_VERSIONS) for v in e.items(field, value)]
    if not versions:
        return []
    why = validate.tls_versions_error(versions)
    if why is not None:
        raise RenderError(f"{field}: {why}")
    order = validate.version_range(versions)
    return [f"ssl-min-ver {HAPROXY_VERSIONS[order[0]]}",
            f"ssl-max-ver {HAPROXY_VERSIONS[order[-1]]}"]


def _alpn(field: str, value: Any) -> list[str]:
    protocols = [e.choice(field, p, c.ALPN_PROTOCOLS) for p in e.items(field, value)]
    return [f"alpn {','.join(protocols)}"] if protocols else []


def _common(obj: ListenerSpec | PoolSpec, what: str) -> list[str]:
    return [*_ciphers(f"{what} tls_ciphers", obj.tls_ciphers),
            *_versions(f"{what} tls_versions", obj.tls_versions),
            *_alpn(f"{what} alpn_protocols", obj.alpn_protocols)]


def bind_options(listener: ListenerSpec, certificates: Mapping[str, str]) -> str:
    """`` ssl crt ... [verify ... ca-file ... crl-file ...] ciphers ...`` for each bind line."""
    words = ["ssl"]
    refs = _server_refs(listener)
    for ref in refs:
        _path(certificates, "server", ref)  # refuse a certificate that is not available
    if refs:
        lid = e.ident("listener id", listener.id)
        words.append(f'crt-list "${{LBAAS_CONF_DIR}}/{_crt_list(lid)}"')
    auth = listener.client_authentication or "NONE"
    e.choice("client_authentication", auth, ("NONE", "OPTIONAL", "MANDATORY"))
    ca = listener.client_ca_tls_container_ref
    if auth != "NONE" and ca:
        words.append(f"verify {VERIFY[auth]} ca-file {_path(certificates, 'ca', ca)}")
        crl = listener.client_crl_container_ref
        if crl:
            words.append(f"crl-file {_path(certificates, 'crl', crl)}")
    words += _common(listener, "listener")
    return " " + " ".join(words)


def frontend_lines(listener: ListenerSpec) -> list[str]:
    """HSTS and the X-SSL-* insert_headers of a TLS-terminating HTTP frontend."""
    out = []
    headers = e.json_value("insert_headers", listener.insert_headers) or {}
    if not isinstance(headers, Mapping):
        raise RenderError("insert_headers: expected an object")
    for key, line in SSL_HEADER_LINES.items():
        if key in headers and e.header_flag(f"insert_headers {key}", headers[key]):
            out.append(line)
    max_age = listener.hsts_max_age
    if max_age is not None:
        value = f"max-age={e.integer('hsts_max_age', max_age, 0, MAX_INT32)};"
        if e.flag("hsts_include_subdomains", listener.hsts_include_subdomains or False):
            value += " includeSubDomains;"
        if e.flag("hsts_preload", listener.hsts_preload or False):
            value += " preload;"
        out.append(f'http-response set-header Strict-Transport-Security "{value}"')
    return out


def server_options(pool: PoolSpec, certificates: Mapping[str, str]) -> str:
    """`` ssl verify ... [crt ...] ...`` for every server of a pool with tls_enabled."""
    words = ["ssl"]
    ca = pool.ca_tls_container_ref
    if ca:
        words.append(f"verify required ca-file {_path(certificates, 'ca', ca)}")
        crl = pool.crl_container_ref
        if crl:
            words.append(f"crl-file {_path(certificates, 'crl', crl)}")
    else:
        words.append("verify none")
    if pool.tls_container_ref:
        words.append(f"crt {_path(certificates, 'server', pool.tls_container_ref)}")
    words += _common(pool, "pool")
    return " " + " ".join(words)
