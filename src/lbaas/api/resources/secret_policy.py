"""Who may do what in the key manager: Barbican's default policy by role.

Barbican's defaults (secure RBAC, and the legacy role names that map onto them): a project's
``member`` (legacy ``creator``) or ``admin`` creates, deletes and decrypts its secrets and
containers; ``reader`` (legacy ``observer``, ``audit``) sees their metadata only; any other
role is refused (403), even inside the right project. Key choice: the roles are the caller's
own in both modes: the token's with Keystone, ``X-Roles`` under ``noauth`` (``admin`` when the
header is absent), as Barbican's unauthenticated context does — ``noauth``'s "everyone is
admin" is Octavia's rule for Octavia's API, not Barbican's.
"""

from __future__ import annotations

from enum import Enum

from lbaas.api.http import ApiRequest
from lbaas.api.resources.secret_input import BarbicanError

WRITERS = frozenset({"admin", "member", "creator"})
READERS = WRITERS | {"reader", "observer", "audit"}


class Access(Enum):
    READ = "read"  # metadata: list, show, container contents
    WRITE = "write"  # create, upload a payload, delete
    DECRYPT = "decrypt"  # the payload itself


def allowed(roles: frozenset[str], access: Access) -> bool:
    needed = READERS if access is Access.READ else WRITERS
    return any(r.lower() in needed for r in roles)


def enforce(req: ApiRequest, access: Access, operation: str) -> None:
    """Raise Barbican's 403 unless the caller's roles allow ``access``.

    ``operation`` is Barbican's name for the call ("Secret creation", "Secret payload
    retrieval"), used in its message.
    """
    if not allowed(req.context.roles, access):
        raise BarbicanError(f"{operation} attempt not allowed - please review your "
                            "user/project privileges", 403)
