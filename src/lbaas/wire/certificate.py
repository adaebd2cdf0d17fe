"""Agent API for server-certificate rotation: ``PUT /v1/certificate`` and its JSON shapes.

Key choice: the controller sends a whole new (certificate, key) pair signed by the same CA over
the existing two-way TLS connection; the agent answers with what it now serves (serial and
expiry), so the controller records the expiry the agent really has. Kept beside
``agent_api`` so the bundle contract stays unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from lbaas.wire.agent_api import WireError

CERTIFICATE_PATH = "/v1/certificate"
MAX_PEM = 64 * 1024


class CertificateResponse(TypedDict):
    serial: str  # hex
    not_after: str  # ISO 8601, UTC


@dataclass(frozen=True)
class CertificateRequest:
    cert_pem: str
    key_pem: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"cert_pem": self.cert_pem, "key_pem": self.key_pem}

    @classmethod
    def from_json(cls, obj: Any) -> CertificateRequest:
        if not isinstance(obj, dict):
            raise WireError("certificate request must be a JSON object")
        values: list[str] = []
        for name, marker in (("cert_pem", "CERTIFICATE"), ("key_pem", "PRIVATE KEY")):
            value = obj.get(name)
            if not isinstance(value, str) or len(value) > MAX_PEM or "\x00" in value:
                raise WireError(f"{name} must be a PEM string of at most {MAX_PEM} bytes")
            if f"{marker}-----" not in value:
                raise WireError(f"{name} is not a PEM {marker.lower()}")
            values.append(value)
        return cls(cert_pem=values[0], key_pem=values[1])


def parse_certificate_response(obj: Any) -> CertificateResponse:
    if (not isinstance(obj, dict) or not isinstance(obj.get("serial"), str)
            or not isinstance(obj.get("not_after"), str)):
        raise WireError(f"unexpected certificate response: {obj!r}"[:300])
    return CertificateResponse(serial=obj["serial"], not_after=obj["not_after"])
