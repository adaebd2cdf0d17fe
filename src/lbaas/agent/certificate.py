"""The agent's TLS server certificate, replaceable while it serves (``PUT /v1/certificate``).

Key choice: the live ``ssl.SSLContext`` is reloaded in place (``load_cert_chain`` again), which
OpenSSL applies to handshakes that start afterwards; established connections keep the session
they have, so rotation never drops a connection. A new pair is first loaded into a scratch
context (the key must match the certificate and it must chain to the CA this agent trusts),
then written next to the old files and renamed over them, so a restarted agent serves the new
certificate too (only a crash between the two renames could leave a mismatched pair).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import ssl
import tempfile
from pathlib import Path
from typing import Any

from lbaas.wire.certificate import CertificateRequest, CertificateResponse

log = logging.getLogger("lbaas.agent.certificate")


class CertificateRefused(Exception):
    """The pair is unusable (mismatched key, wrong CA, expired); the old one still serves."""


def _x509() -> Any:
    # Imported on first use: cryptography adds ~9 MB to every idle agent's RSS, and only
    # certificate rotation needs it.
    from cryptography import x509

    return x509


def describe(cert_pem: str) -> CertificateResponse:
    cert = _x509().load_pem_x509_certificate(cert_pem.encode())
    return CertificateResponse(serial=f"{cert.serial_number:x}",
                               not_after=cert.not_valid_after_utc.isoformat())


class ServerCertificate:
    def __init__(self, ctx: ssl.SSLContext, cert_file: str | Path, key_file: str | Path,
                 ca_file: str | Path) -> None:
        self.ctx = ctx
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.ca_file = Path(ca_file)

    def current(self) -> CertificateResponse:
        return describe(self.cert_file.read_text())

    def replace(self, request: CertificateRequest) -> CertificateResponse:
        info = self._check(request)
        self._write(self.key_file, request.key_pem, 0o600)
        self._write(self.cert_file, request.cert_pem, 0o644)
        self.ctx.load_cert_chain(self.cert_file, self.key_file)
        log.info("server certificate replaced: serial %s, valid until %s", info["serial"],
                 info["not_after"])
        return info

    def _check(self, request: CertificateRequest) -> CertificateResponse:
        try:
            x509 = _x509()
            cert = x509.load_pem_x509_certificate(request.cert_pem.encode())
            ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            cert.verify_directly_issued_by(ca)
        except Exception as exc:  # any parse/verify failure means "refused"
            raise CertificateRefused(f"certificate not issued by this agent's CA: {exc}") \
                from None
        if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
            raise CertificateRefused("certificate has already expired")
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(dir=self.key_file.parent) as tmp:
            cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            self._write(cert_path, request.cert_pem, 0o600)
            self._write(key_path, request.key_pem, 0o600)
            try:
                scratch.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise CertificateRefused("the key does not match the certificate") from None
        return describe(request.cert_pem)

    @staticmethod
    def _write(path: Path, text: str, mode: int) -> None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
