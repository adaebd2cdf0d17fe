"""Read user TLS material (PKCS12 or PEM secrets, certificate containers) into HAProxy PEMs.

Key choices: a certificate secret is tried as PKCS12 without a passphrase first (Octavia's
cookbook), then as a PEM blob (certificate, intermediates, key in any order). A container gives
certificate / private_key / intermediates / private_key_passphrase separately (Barbican's
certificate container). Errors carry only the parser's own words, never the material: they end
up in API responses and logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)
PEM = serialization.Encoding.PEM


class UnreadableCertificate(Exception):
    """The material is not a usable certificate (message safe to show)."""


class UnreadablePKCS12(UnreadableCertificate):
    """Octavia's 400 for a PKCS12 bundle it cannot read."""


@dataclass(frozen=True)
class ServerCertificate:
    pem: str  # certificate, intermediates, private key: HAProxy's ``crt`` file
    names: tuple[str, ...]  # subject CN and DNS subject alternative names


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
             if isinstance(a.value, str)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return tuple(dict.fromkeys(names))


def _assemble(cert: x509.Certificate, key: object, chain: list[x509.Certificate]) \
        -> ServerCertificate:
    try:
        key_pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                    serialization.NoEncryption())
        matches = key.public_key().public_bytes(  # type: ignore[attr-defined]
            PEM, serialization.PublicFormat.SubjectPublicKeyInfo) == cert.public_key(
        ).public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (AttributeError, ValueError, TypeError):
        raise UnreadableCertificate("unsupported private key") from None
    if not matches:
        raise UnreadableCertificate("Key and x509 certificate do not match")
    parts = [cert.public_bytes(PEM), *(c.public_bytes(PEM) for c in chain), key_pem]
    return ServerCertificate(pem=b"".join(parts).decode("ascii"), names=_names(cert))


def _blocks(data: bytes, kinds: tuple[str, ...]) -> list[bytes]:
    return [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1).decode() in kinds]


def _certs(data: bytes) -> list[x509.Certificate]:
    out = []
    for block in _blocks(data, ("CERTIFICATE",)):
        try:
            out.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise UnreadableCertificate("Could not read X509 from PEM") from None
    return out


def _key(data: bytes, passphrase: bytes | None) -> object:
    blocks = _blocks(data, ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY",
                            "ENCRYPTED PRIVATE KEY"))
    if len(blocks) != 1:
        raise UnreadableCertificate("expected exactly one PEM private key")
    try:
        return serialization.load_pem_private_key(blocks[0], passphrase or None)
    except (ValueError, TypeError):
        raise UnreadableCertificate("Passphrase needed or wrong for the private key") from None


def _from_pkcs12(data: bytes) -> ServerCertificate:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, None)
    except (ValueError, TypeError) as exc:
        raise UnreadablePKCS12(f"{type(exc).__name__}: could not deserialize PKCS12 data") \
            from None
    if cert is None or key is None:
        raise UnreadablePKCS12("the PKCS12 bundle has no certificate or no key")
    return _assemble(cert, key, list(extra))


def server_certificate(material: Mapping[str, bytes]) -> ServerCertificate:
    """From ``{"payload": ...}`` (a secret) or a certificate container's named payloads."""
    if "payload" in material:
        data = material["payload"]
        if b"-----BEGIN" not in data:
            return _from_pkcs12(data)
        certs = _certs(data)
        if not certs:
            raise UnreadableCertificate("no PEM certificate")
        return _assemble(certs[0], _key(data, None), certs[1:])
    if "certificate" not in material or "private_key" not in material:
        raise UnreadableCertificate("a certificate container needs certificate and private_key")
    certs = _certs(material["certificate"])
    if not certs:
        raise UnreadableCertificate("Could not read X509 from PEM")
    chain = _certs(material.get("intermediates", b""))
    passphrase = material.get("private_key_passphrase")
    return _assemble(certs[0], _key(material["private_key"], passphrase), certs[1:] + chain)


def ca_bundle(material: Mapping[str, bytes]) -> str:
    """PEM certificates of a client/member CA secret (or a container's ``certificate``)."""
    data = material.get("payload", material.get("certificate", b""))
    try:
        certs = _certs(data)
    except UnreadableCertificate as exc:
        raise UnreadableCertificate(f"The client authentication CA certificate is invalid. It "
                                    f"must be a valid x509 PEM format certificate. Error: "
                                    f"{exc}") from None
    if not certs:
        raise UnreadableCertificate("The client authentication CA certificate is invalid. It "
                                    "must be a valid x509 PEM format certificate. Error: no "
                                    "PEM certificate found")
    return "".join(c.public_bytes(PEM).decode("ascii") for c in certs)


def crl_pem(material: Mapping[str, bytes], ca: str | None = None) -> str:
    """The PEM CRL of a secret; with ``ca``, it must be signed by one of its certificates."""
    blocks = _blocks(material.get("payload", b""), ("X509 CRL",))
    try:
        crl = x509.load_pem_x509_crl(blocks[0] if blocks else b"")
    except ValueError:
        raise UnreadableCertificate("The client authentication certificate revocation list is "
                                    "invalid. It must be a valid x509 PEM format certificate "
                                    "revocation list. Error: no PEM CRL found") from None
    if ca is not None:
        def signed_by(cert: x509.Certificate) -> bool:
            try:
                return crl.is_signature_valid(cert.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
        if not any(signed_by(c) for c in _certs(ca.encode())):
            raise UnreadableCertificate("The CRL specified is not valid for client "
                                        "certificate authority reference supplied.")
    return crl.public_bytes(PEM).decode("ascii")
