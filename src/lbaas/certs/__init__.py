"""Certificates: the internal CA that secures controller <-> amphora-agent traffic."""

from lbaas.certs.ca import CertificateAuthority, ClientFiles

__all__ = ["CertificateAuthority", "ClientFiles"]
