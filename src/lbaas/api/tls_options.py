"""Checks of the TLS options of listeners and pools: ``tls_ciphers``, ``tls_versions`` and
(pools; listeners check theirs in the field schema) ``alpn_protocols``.

Both follow upstream's wording; ``None`` (not sent, or reset to the configured default) passes.
"""

from __future__ import annotations

from collections.abc import Collection

from lbaas.api import cipher_policy
from lbaas.api.errors import ValidationFailure
from lbaas.api.http import ApiRequest
from lbaas.domain import constants as c
from lbaas.render import validate


def check_ciphers(req: ApiRequest, ciphers: str | None) -> None:
    """The operator's prohibit list first, then what OpenSSL would refuse."""
    if not ciphers:
        return
    rejected = cipher_policy.prohibited_entries(ciphers,
                                                req.app.settings.api.tls_cipher_prohibit_list)
    if rejected:
        raise ValidationFailure("The following ciphers have been prohibited by an "
                                "administrator: " + ", ".join(rejected))
    if (why := validate.ciphers_error(ciphers)) is not None:
        raise ValidationFailure(why)


def check_tls_versions(req: ApiRequest, versions: list[str] | None) -> None:
    """Not empty, known, not below ``[api] minimum_tls_version``, renderable."""
    if versions is None:
        return
    _require_known(versions, c.TLS_VERSIONS, "TLS version", "Invalid TLS versions: ")
    minimum = req.app.settings.api.minimum_tls_version
    if minimum:
        floor = c.TLS_VERSIONS.index(minimum)
        low = [v for v in versions if c.TLS_VERSIONS.index(v) < floor]
        if low:
            raise ValidationFailure("Requested TLS versions are less than the minimum: "
                                    + ", ".join(low) + " < " + minimum)
    if (why := validate.tls_versions_error(versions)) is not None:
        raise ValidationFailure(why)


def check_alpn(protocols: list[str] | None) -> None:
    if protocols is not None:
        _require_known(protocols, c.ALPN_PROTOCOLS, "ALPN protocol", "Invalid ALPN protocol: ")


def _require_known(values: list[str], known: Collection[str], what: str, invalid: str) -> None:
    if values == []:
        raise ValidationFailure(f"Empty {what} list. Either specify at least one {what} or "
                                "remove this parameter to use the default.")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValidationFailure(invalid + ", ".join(unknown))
