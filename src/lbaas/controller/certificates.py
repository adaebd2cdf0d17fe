"""Fetch and decrypt the TLS material a load balancer's config names, for ``render_bundle``.

Key choice: a certificate that cannot be read for good (secret deleted or undecryptable in
this key manager, unparsable) is left out of the mapping, so rendering refuses the object that
names it and the reconciler contains that object (docs/decisions/0013). A key manager that
cannot answer (Barbican or Keystone unreachable or failing) raises ``KeyManagerUnavailable``
instead: no object is to blame, the pass fails and the amphorae keep their last bundle, so an
outage never takes TLS listeners out. Log lines name refs and the parser's words only, never
material.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import Engine

from lbaas.certs import tls
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.barbican import BarbicanCertManager, BarbicanUnavailable
from lbaas.render.tls import certificate_needs
from lbaas.settings import Settings
from lbaas.store import secrets as store

log = logging.getLogger(__name__)


class KeyManagerUnavailable(Exception):
    """The key manager could not answer now; nothing is wrong with the configuration."""

TOKEN_REUSE_SECONDS = 600.0  # Keystone tokens live an hour by default


def _pem(role: str, material: Mapping[str, bytes]) -> str:
    if role == "server":
        return tls.server_certificate(material).pem
    if role == "ca":
        return tls.ca_bundle(material)
    return tls.crl_pem(material)


def service_token(settings: Settings, client: httpx.Client | None = None) -> str:
    """A Keystone v3 token for the service user (the controller reads Barbican as itself)."""
    ks = settings.keystone
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": ks.username, "password": ks.password,
        "domain": {"name": ks.user_domain_name}}}},
        "scope": {"project": {"name": ks.project_name,
                              "domain": {"name": ks.project_domain_name}}}}}
    http = client or httpx.Client(timeout=10.0)
    resp = http.post(ks.auth_url.rstrip("/") + "/auth/tokens", json=body)
    if resp.status_code != 201:
        raise BarbicanUnavailable(f"Keystone answered {resp.status_code} for the service token")
    return resp.headers["X-Subject-Token"]


def _holds_nothing(ref: str) -> dict[str, bytes]:
    raise store.SecretUnavailable("cert_manager = noop holds no certificates")


class CertificateLoader:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._token: tuple[str, float] | None = None

    def _service_token(self) -> str:
        # render runs once per amphora per pass: one token serves many passes
        now = time.monotonic()
        if self._token is None or now - self._token[1] > TOKEN_REUSE_SECONDS:
            self._token = (service_token(self.settings), now)
        return self._token[0]

    def _reader(self, conn: Any, project_id: str | None) -> Callable[[str], dict[str, bytes]]:
        certs = self.settings.certificates
        if certs.cert_manager == "noop":  # nothing to read: render refuses, objects go ERROR
            return _holds_nothing
        if certs.cert_manager == "barbican":
            manager = BarbicanCertManager(certs.barbican_endpoint, self._service_token(),
                                          store.parse_ref)
            return manager.read_ref
        box = store.secret_box(self.settings.shared_path)
        return lambda ref: store.read_ref(conn, box, project_id, ref)

    def load(self, aggregate: LoadBalancerSpec) -> dict[str, str]:
        """PEM texts by file stem for every certificate the aggregate's config names."""
        needs = certificate_needs(aggregate)
        if not needs:
            return {}
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            try:
                read = self._reader(conn, aggregate.project_id)
                for need in needs:
                    try:
                        out[need.stem] = _pem(need.role, read(need.ref))
                    except (store.SecretUnavailable, tls.UnreadableCertificate) as exc:
                        log.warning("load balancer %s: certificate %s unavailable: %s",
                                    aggregate.id, need.ref, exc)
            except (BarbicanUnavailable, httpx.HTTPError) as exc:
                log.warning("load balancer %s: no certificates: %s", aggregate.id, exc)
                raise KeyManagerUnavailable(str(exc)) from exc
        return out
