"""Neutron's error body (``{"NeutronError": {type, message, detail}}``) and its usual errors.

``type`` is the name of the exception Neutron raises (``NetworkNotFound``, ``InvalidInput``,
webob's ``HTTPBadRequest`` ...) and ``message`` its text, so clients that match either keep
working.
"""

from __future__ import annotations

from typing import Any

from lbaas.api.errors import ApiError


class NeutronError(ApiError):
    """An error rendered as Neutron renders it."""

    def __init__(self, kind: str, message: str, status: int, detail: str = "") -> None:
        super().__init__(message, status)
        self.kind = kind
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"NeutronError": {"type": self.kind, "message": self.faultstring,
                                 "detail": self.detail}}


def bad_request(message: str) -> NeutronError:
    """webob's HTTPBadRequest, raised by Neutron's request-body checks."""
    return NeutronError("HTTPBadRequest", message, 400)


def invalid_input(message: str) -> NeutronError:
    return NeutronError("InvalidInput", f"Invalid input for operation: {message}.", 400)


def invalid_attr(attr: str, reason: str) -> NeutronError:
    """An attribute failing its validator (neutron-lib's ``convert_values``)."""
    return NeutronError("HTTPBadRequest", f"Invalid input for {attr}. Reason: {reason}.", 400)


def bad_resource(resource: str, message: str) -> NeutronError:
    """neutron-lib's generic ``BadRequest(resource=..., msg=...)``."""
    return NeutronError("BadRequest", f"Bad {resource} request: {message}.", 400)


def forbidden(action: str) -> NeutronError:
    return NeutronError("PolicyNotAuthorized", f"(rule:{action}) is disallowed by policy", 403)


def not_found(label: str, ident: str) -> NeutronError:
    return NeutronError(f"{label}NotFound", f"{label} {ident} could not be found.", 404)


def network_in_use(network_id: str) -> NeutronError:
    return NeutronError("NetworkInUse", f"Unable to complete operation on network {network_id}. "
                        "There are one or more ports still in use on the network.", 409)


def subnet_in_use(subnet_id: str, reason: str = "One or more ports have an IP allocation "
                  "from this subnet") -> NeutronError:
    return NeutronError("SubnetInUse", f"Unable to complete operation on subnet {subnet_id}: "
                        f"{reason}.", 409)
