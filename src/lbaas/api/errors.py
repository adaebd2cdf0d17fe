"""Octavia's error bodies and the exceptions that produce them.

Every error the API raises is an ``ApiError`` with the HTTP status and the exact faultstring
upstream uses, so clients that match on messages keep working. Most are WSME's
``{faultcode, faultstring, debuginfo}``; the ones upstream raises outside its WSME handlers
(routing, the pagination hook, the parent lookup of members and rules) are webob's
``{code, title, description}`` as pecan renders them: ``WebobError``.
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


class WebobError(ApiError):
    """pecan's JSON rendering of a webob exception. ``title`` follows webob's class, not the
    status: Octavia's own exceptions derive from ``HTTPClientError``, so a 404 they raise is
    titled "Bad Request"."""

    def __init__(self, status: int, title: str, description: str | None) -> None:
        super().__init__(description or "", status)
        self.title = title
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "title": self.title, "description": self.description}


def route_not_found(description: str | None = "") -> WebobError:
    return WebobError(404, "Not Found", description)


def method_not_allowed() -> WebobError:
    return WebobError(405, "Method Not Allowed", "")


def hook_error(status: int, description: str) -> WebobError:
    """An Octavia ``APIException`` raised before the WSME handler runs."""
    return WebobError(status, "Bad Request", description)


class BadRequest(ApiError):
    status = 400


class UnknownAttribute(BadRequest):
    """WSME's message for keys a type does not have; containers prepend their names as the
    error bubbles up (``load_balancer.loadbalancer.listeners``)."""

    def __init__(self, attributes: list[str], fieldname: str | None = None) -> None:
        self.attributes = attributes
        self.fieldname = fieldname
        super().__init__(self._message())

    def add_fieldname(self, name: str) -> None:
        self.fieldname = name if self.fieldname is None else f"{name}.{self.fieldname}"
        self.faultstring = self._message()
        self.args = (self.faultstring,)

    def _message(self) -> str:
        noun = "attributes" if len(self.attributes) > 1 else "attribute"
        return f"Unknown {noun} for argument {self.fieldname}: {', '.join(self.attributes)}"


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
