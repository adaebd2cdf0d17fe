"""Test TLS material: a CA with a CRL, server certificates it signs, PKCS12 bundles, and a way
to put a sealed secret straight into a service's key manager."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def pkcs12(self, chain: list[x509.Certificate] | None = None) -> bytes:
        return pkcs12.serialize_key_and_certificates(
            b"lbaas", self.key, self.cert, chain, serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn: str, issuer: Issued | None = None, names: tuple[str, ...] = (),
          ca: bool = False, client: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer.cert.subject if issuer else _name(cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if not ca:
        usage = x509.ExtendedKeyUsageOID.CLIENT_AUTH if client else \
            x509.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def crl(ca: Issued, revoked: list[Issued] = ()) -> bytes:  # type: ignore[assignment]
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(NOW).next_update(NOW + dt.timedelta(days=3650)))
    for item in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(item.cert.serial_number)
            .revocation_date(NOW).build())
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(PEM)


@lru_cache(maxsize=1)
def universal() -> bytes:
    """A PEM blob usable in every role: a CA certificate, its key and its empty CRL."""
    ca = issue("lbaas test CA", ca=True)
    return ca.cert_pem + ca.key_pem + crl(ca)


def seal_secret(service: Any, project_id: str | None, payload: bytes,
                name: str = "cert", content_type: str = "text/plain") -> str:
    """Insert an encrypted secret as the key-manager API would; return its id."""
    from lbaas.api.common import utcnow
    from lbaas.store import secrets as store
    from lbaas.store import tables as t

    box = store.secret_box(service.settings.data_dir)
    secret_id = str(uuid.uuid4())
    with service.engine.begin() as conn:
        conn.execute(t.secret.insert().values(
            id=secret_id, project_id=project_id, name=name, payload=box.seal(payload),
            content_type=content_type, secret_type="opaque", created_at=utcnow()))
    return secret_id
