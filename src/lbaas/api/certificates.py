"""Listener and pool certificate checks: the refs must be readable by the caller and parse.

As upstream: certificate refs (default, SNI, pool client certificate) that cannot be fetched or
parsed give 400 "Could not retrieve certificate: [refs]"; a secret that is neither PEM nor a
readable PKCS12 bundle gives Octavia's UnreadablePKCS12 400; CA and CRL refs are parsed and the
CRL must be signed by the CA. Messages name refs and the parser's words, never material.
With ``cert_manager = "noop"`` (upstream's noop_cert_manager) any ref is accepted unread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from lbaas.api.errors import BadRequest, ValidationFailure
from lbaas.api.http import ApiRequest
from lbaas.certs import tls
from lbaas.drivers.barbican import BarbicanCertManager, BarbicanUnavailable
from lbaas.store import secrets as store

PKCS12_MESSAGE = ("The PKCS12 bundle is unreadable. Please check the PKCS12 bundle validity. In "
                  "addition, make sure it does not require a pass phrase. Error: {error}")
Reader = Callable[[str], dict[str, bytes]]
UNAVAILABLE = (store.SecretUnavailable, BarbicanUnavailable)


def reader(req: ApiRequest, conn: Connection, project_id: str | None) -> Reader:
    """ref -> named payloads, from this server's key manager or from Barbican as the caller."""
    certs = req.app.settings.certificates
    if certs.cert_manager == "barbican":
        token = req.headers.get("x-auth-token", "")
        manager = BarbicanCertManager(certs.barbican_endpoint, token, store.parse_ref)
        return manager.read_ref
    box = store.secret_box(req.app.settings.shared_path)
    return lambda ref: store.read_ref(conn, box, project_id, ref)


def _noop(req: ApiRequest) -> bool:
    return bool(req.app.settings.certificates.cert_manager == "noop")


def check_server_refs(req: ApiRequest, conn: Connection, project_id: str | None,
                      refs: Sequence[str | None]) -> None:
    given = [r for r in refs if r]
    if not given or _noop(req):  # most listeners and pools name none: no reader to build
        return
    read = reader(req, conn, project_id)
    bad = []
    for ref in given:
        try:
            tls.server_certificate(read(ref))
        except tls.UnreadablePKCS12 as exc:
            raise BadRequest(PKCS12_MESSAGE.format(error=exc)) from None
        except (*UNAVAILABLE, tls.UnreadableCertificate):
            bad.append(ref)
    if bad:
        raise BadRequest(f"Could not retrieve certificate: {bad}")


def check_ca_refs(req: ApiRequest, conn: Connection, project_id: str | None,
                  ca_ref: str | None, crl_ref: str | None) -> None:
    """The CA (and CRL) refs of a listener's client authentication or a pool's members."""
    if not ca_ref or _noop(req):
        return
    read = reader(req, conn, project_id)
    material, bad = {}, []
    for ref in (r for r in (ca_ref, crl_ref) if r):
        try:
            material[ref] = read(ref)
        except UNAVAILABLE:
            bad.append(ref)
    if bad:
        raise BadRequest(f"Could not retrieve certificate: {bad}")
    try:
        ca = tls.ca_bundle(material[ca_ref])
        if crl_ref:
            tls.crl_pem(material[crl_ref], ca)
    except tls.UnreadableCertificate as exc:
        raise ValidationFailure(str(exc)) from None
