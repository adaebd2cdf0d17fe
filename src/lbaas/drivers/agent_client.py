"""Amphora driver that talks to ``lbaas-agent`` over HTTPS with a client certificate.

Key choice: one ``httpx.AsyncClient`` per driver, verifying the agent's certificate against the
internal CA (its SAN carries the amphora's management IP) and presenting the controller's client
certificate. Connection failures are retried a few times quickly (an amphora that just booted);
a 400 is final and its reason goes into the DriverError the reconciler records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from typing import Any

import httpx

from lbaas.drivers.base import BundleRefused, ComputeInfo, DriverError
from lbaas.wire.agent_api import (
    AGENT_PORT,
    BUNDLE_PATH,
    INFO_PATH,
    STATS_PATH,
    STATUS_PATH,
    ApplyResponse,
    InfoResponse,
    StatsResponse,
    StatusResponse,
    WireError,
    error_text,
    parse_apply_response,
    parse_info_response,
    parse_status_response,
)
from lbaas.wire.certificate import (
    CERTIFICATE_PATH,
    CertificateRequest,
    CertificateResponse,
    parse_certificate_response,
)

log = logging.getLogger(__name__)

_RETRY_DELAYS = (0.1, 0.3, 0.7)
# Shorter than the agent worker's idle close (``--idle-exit``, 10 s by default), so that a pooled
# connection is never reused just as the agent closes it.
KEEPALIVE_EXPIRY = 5.0


def client_ssl_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class AgentAmphoraDriver:
    """AmphoraDriver over the agent API (see docs/agent-protocol.md)."""

    def __init__(self, ca_file: str, cert_file: str, key_file: str, port: int = AGENT_PORT,
                 timeout: float = 30.0) -> None:
        self.port = port
        self._ssl = client_ssl_context(str(ca_file), str(cert_file), str(key_file))
        self._client = httpx.AsyncClient(
            verify=self._ssl,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY))

    async def aclose(self) -> None:
        await self._client.aclose()

    def _url(self, compute: ComputeInfo, path: str) -> str:
        host = compute.lb_network_ip
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}{path}"

    async def _request(self, method: str, compute: ComputeInfo, path: str,
                       body: dict[str, Any] | None = None,
                       retry_delays: tuple[float, ...] = _RETRY_DELAYS) -> Any:
        url = self._url(compute, path)
        content = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        resent = False
        for delay in (*retry_delays, None):
            try:
                response = await self._client.request(method, url, content=content,
                                                      headers=headers)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if delay is None:
                    raise DriverError(f"agent {compute.compute_id} unreachable: {exc}") from exc
                await asyncio.sleep(delay)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                # Closed without an answer: the agent's worker may have been exiting (idle) as
                # the request arrived. Every agent request is idempotent (bundles carry their
                # digest), so send it once more.
                if resent:
                    raise DriverError(f"agent {compute.compute_id}: {exc!r}") from exc
                resent = True
            except httpx.HTTPError as exc:
                # Sent but no answer: the agent may or may not have applied it; the caller
                # compares digests on its next pass.
                raise DriverError(f"agent {compute.compute_id}: {exc!r}") from exc
        log.debug("agent %s: %s %s -> %d", compute.compute_id, method, path,
                  response.status_code)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            reason = error_text(data, response.text[:500])
            if response.status_code == 400:
                raise BundleRefused(reason) if path == BUNDLE_PATH else DriverError(reason)
            raise DriverError(f"agent answered {response.status_code}: {reason}")
        return data

    async def apply(self, compute: ComputeInfo, bundle: dict[str, Any], digest: str) -> str:
        """PUT the whole bundle; return the digest the agent now serves."""
        return (await self.push(compute, bundle, digest))["digest"]

    async def push(self, compute: ComputeInfo, bundle: dict[str, Any],
                   digest: str) -> ApplyResponse:
        """Like ``apply`` but also says how it was applied (start/reload/runtime/unchanged)."""
        data = await self._request("PUT", compute, BUNDLE_PATH,
                                   {"digest": digest, "files": bundle["files"]})
        try:
            return parse_apply_response(data)
        except WireError as exc:
            raise DriverError(str(exc)) from exc

    async def forget(self, compute_id: str) -> None:
        """Nothing is cached per amphora."""

    async def info(self, compute: ComputeInfo) -> InfoResponse:
        try:
            return parse_info_response(await self._request("GET", compute, INFO_PATH))
        except WireError as exc:
            raise DriverError(str(exc)) from exc

    async def status(self, compute: ComputeInfo) -> StatusResponse:
        try:
            return parse_status_response(await self._request("GET", compute, STATUS_PATH))
        except WireError as exc:
            raise DriverError(str(exc)) from exc

    async def stats(self, compute: ComputeInfo) -> StatsResponse:
        data = await self._request("GET", compute, STATS_PATH)
        if not isinstance(data, dict):
            raise DriverError("unexpected stats response")
        return data

    async def replace_certificate(self, compute: ComputeInfo, cert_pem: str,
                                  key_pem: str) -> CertificateResponse:
        """Give the agent a new server certificate; it serves it to new connections."""
        body = CertificateRequest(cert_pem=cert_pem, key_pem=key_pem).to_json()
        try:
            return parse_certificate_response(
                await self._request("PUT", compute, CERTIFICATE_PATH, body))
        except WireError as exc:
            raise DriverError(str(exc)) from exc

    async def served_certificate(self, compute: ComputeInfo) -> dict[str, Any]:
        """The certificate a fresh TLS handshake with the agent shows (``getpeercert()``)."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                compute.lb_network_ip, self.port, ssl=self._ssl), timeout=5.0)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise DriverError(f"agent {compute.compute_id} unreachable: {exc}") from exc
        try:
            peer = writer.get_extra_info("peercert")
        finally:
            writer.close()
        if not isinstance(peer, dict):
            raise DriverError(f"agent {compute.compute_id} showed no certificate")
        return peer

    async def wait_ready(self, compute: ComputeInfo, timeout: float = 60.0) -> InfoResponse:
        """Poll /v1/info until the agent answers (DriverError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                data = await self._request("GET", compute, INFO_PATH, retry_delays=())
                return parse_info_response(data)
            except (DriverError, WireError) as exc:
                last = exc
            await asyncio.sleep(0.1)
        raise DriverError(f"agent {compute.compute_id} not ready after {timeout}s: {last}")
