"""The controller's client of the host-agents: HTTPS with the workers' client certificate.

The host-agent's server certificate is issued by the internal CA for its underlay address (the
SAN checked here), as an amphora agent's is for its management address.
"""

from __future__ import annotations

from typing import Any

import httpx

from lbaas.drivers.agent_client import client_ssl_context
from lbaas.drivers.base import DriverError


class HostUnreachable(DriverError):
    """The host-agent did not answer."""


class HostClient:
    def __init__(self, ca_file: str, cert_file: str, key_file: str,
                 timeout: float = 60.0) -> None:
        self._ssl = client_ssl_context(ca_file, cert_file, key_file)
        self._client = httpx.AsyncClient(verify=self._ssl,
                                         timeout=httpx.Timeout(timeout, connect=2.0))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, endpoint: str, method: str, path: str,
                   body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """``endpoint``: ``ADDRESS:PORT`` of a host-agent."""
        try:
            response = await self._client.request(
                method, f"https://{endpoint}{path}", json=body,
                **({"timeout": timeout} if timeout else {}))
        except httpx.HTTPError as exc:
            raise HostUnreachable(f"host-agent {endpoint}: {exc!r}") from None
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text[:200]}
        if response.status_code != 200:
            raise DriverError(f"host-agent {endpoint}: {method} {path}: "
                              f"{response.status_code} {data.get('error', data)}")
        return data
