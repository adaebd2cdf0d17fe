"""Octavia's error bodies (WSME style) and the exceptions that produce them.

Every error the API raises is an ``ApiError`` with the HTTP status and the exact faultstring
upstream uses, so clients that match on messages keep working.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500

    def __init__(self, faultstring: str, status: int | None = None) -> None:
        super().__init__(faultstring)
        self.faultstring = faultstring
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "faultcode": "Client" if self.status < 500 else "Server",
            "faultstring": self.faultstring,
            "debuginfo": None,
        }


class BadRequest(ApiError):
    status = 400


class InvalidInput(BadRequest):
    """A field failed type, enum, range or length validation."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(
            f"Invalid input for field/attribute {field}. Value: '{_repr(value)}'. {reason}"
        )


class ValidationFailure(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Validation failure: {detail}")


class Forbidden(ApiError):
    status = 403

    def __init__(self, faultstring: str = "Policy does not allow this request to be performed.")\
            -> None:
        super().__init__(faultstring)


class NotFound(ApiError):
    status = 404

    def __init__(self, resource: str, ident: str) -> None:
        super().__init__(f"{resource} {ident} not found.")


class Conflict(ApiError):
    status = 409


class ImmutableObject(Conflict):
    def __init__(self, resource: str, ident: str) -> None:
        super().__init__(f"{resource} {ident} is immutable and cannot be updated.")


class InvalidState(Conflict):
    def __init__(self, status: str, ident: str) -> None:
        super().__init__(f"Invalid state {status} of loadbalancer resource {ident}")


class QuotaExceeded(Forbidden):
    def __init__(self, resource: str) -> None:
        super().__init__(f"Quota has been met for resources: {resource}")


class ProviderNotImplemented(ApiError):
    status = 501


def provider_unsupported_option(provider: str, msg: str) -> ProviderNotImplemented:
    return ProviderNotImplemented(
        f"Provider '{provider}' does not support a requested option: {msg}"
    )


def provider_unsupported_action(provider: str, msg: str) -> ProviderNotImplemented:
    return ProviderNotImplemented(
        f"Provider '{provider}' does not support a requested action: {msg}"
    )


def _repr(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 300 else text[:300] + "..."
