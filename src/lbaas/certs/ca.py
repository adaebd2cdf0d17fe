"""Internal certificate authority for two-way TLS between the controller and amphora agents.

Key choice: one self-signed EC P-256 CA kept in a directory (``ca.pem`` + ``ca.key`` at mode
0600), made on first start and reused afterwards. It signs a server certificate per amphora (SAN
= its management IP and its id as a DNS name) and client certificates for the controller. Private
keys are only ever returned to the caller or written with mode 0600; they are never logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_CERT = "ca.pem"
_CA_KEY = "ca.key"
_CA_DAYS = 3650


@dataclass(frozen=True)
class ClientFiles:
    """Paths a TLS client needs: the CA to trust, its certificate and its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _write_private(path: Path, data: str) -> None:
    """Write a file readable by its owner only, created with that mode (no window at 0644)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(data)
    os.replace(tmp, path)


class CertificateAuthority:
    """Signs amphora server certificates and controller client certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self._cert = cert
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return f"CertificateAuthority({self._cert.subject.rfc4514_string()})"

    @classmethod
    def load_or_create(cls, directory: Path) -> CertificateAuthority:
        directory = Path(directory)
        cert_path, key_path = directory / _CA_CERT, directory / _CA_KEY
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            return cls(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lbaas internal CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        # Key first: a crash between the two writes leaves no certificate without its key.
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
        return cls(cert, key)

    @property
    def ca_pem(self) -> str:
        return self._cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    def issue_server(self, amphora_id: str, ip: str, days: int = 365, *,
                     valid_from: dt.datetime | None = None) -> tuple[str, str]:
        """A server certificate for an amphora agent: (cert_pem, key_pem)."""
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)),
                                        x509.DNSName(amphora_id)]
        return self._issue(amphora_id, sans, ExtendedKeyUsageOID.SERVER_AUTH, days, valid_from)

    def issue_client(self, name: str, days: int = 365, *,
                     valid_from: dt.datetime | None = None) -> tuple[str, str]:
        """A client certificate (for the controller): (cert_pem, key_pem)."""
        return self._issue(name, [x509.DNSName(name)], ExtendedKeyUsageOID.CLIENT_AUTH, days,
                           valid_from)

    def issue_host_agent(self, name: str, ip: str, days: int = 365) -> tuple[str, str]:
        """A host-agent's certificate: (cert_pem, key_pem). Common name ``host:<name>``, SAN its
        underlay address; for its API (server auth) and for registering with the controller
        (client auth), where the common name binds the name it may register."""
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip))]
        return self._issue(f"host:{name}", sans, [ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH], days, None)

    def ensure_client_files(self, name: str, directory: Path, days: int = 365,
                            renew_before_days: int = 30) -> ClientFiles:
        """Write (or reuse while still valid long enough) ``name``'s client certificate files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = ClientFiles(directory / "ca.pem", directory / f"{name}.pem",
                            directory / f"{name}.key")
        if files.cert_file.exists() and files.key_file.exists():
            cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
            left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
            if left > dt.timedelta(days=renew_before_days) and self._signed_by_me(cert):
                _write_public(files.ca_file, self.ca_pem)
                return files
        cert_pem, key_pem = self.issue_client(name, days)
        _write_private(files.key_file, key_pem)
        _write_public(files.cert_file, cert_pem)
        _write_public(files.ca_file, self.ca_pem)
        return files

    def _signed_by_me(self, cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(self._cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def _issue(self, cn: str, sans: list[x509.GeneralName],
               usage: x509.ObjectIdentifier | list[x509.ObjectIdentifier],
               days: int, valid_from: dt.datetime | None) -> tuple[str, str]:
        key = _new_key()
        start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usage if isinstance(usage, list) else [usage]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
