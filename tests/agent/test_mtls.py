"""The agent only talks to clients holding a current certificate from the controller's CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from pathlib import Path

import httpx
import pytest
from agent_helpers import AgentProcess, Pki, free_port, needs_haproxy

from lbaas.certs import CertificateAuthority
from lbaas.drivers.agent_client import AgentAmphoraDriver
from lbaas.drivers.base import ComputeInfo, DriverError


def _client(pki: Pki, tmp: Path, cert_key: tuple[str, str] | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    if cert_key is not None:
        (tmp / "c.pem").write_text(cert_key[0])
        (tmp / "c.key").write_text(cert_key[1])
        ctx.load_cert_chain(str(tmp / "c.pem"), str(tmp / "c.key"))
    return httpx.Client(verify=ctx, timeout=5)


def _info(agent: AgentProcess, client: httpx.Client) -> httpx.Response:
    with client:
        return client.get(f"https://127.0.0.1:{agent.port}/v1/info")


@needs_haproxy
def test_valid_client_certificate_is_served(agent: AgentProcess, pki: Pki, tmp_path: Path) -> None:
    response = _info(agent, _client(pki, tmp_path, pki.ca.issue_client("controller", 1)))
    assert response.status_code == 200
    assert response.json() == {"amphora_id": "amp-test", "api_version": "1.0"}


def _other_ca(tmp: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp / "other-ca")


@needs_haproxy
@pytest.mark.parametrize("case", ["none", "self-signed", "other-ca", "expired", "server-cert"])
def test_client_without_acceptable_certificate_is_refused(agent: AgentProcess, pki: Pki,
                                                           tmp_path: Path, case: str) -> None:
    now = dt.datetime.now(dt.UTC)
    cert_key: tuple[str, str] | None
    if case == "none":
        cert_key = None
    elif case == "self-signed":
        other = _other_ca(tmp_path)
        cert_key = (other.ca_pem, (tmp_path / "other-ca" / "ca.key").read_text())
    elif case == "other-ca":
        cert_key = _other_ca(tmp_path).issue_client("controller", 1)
    elif case == "expired":
        cert_key = pki.ca.issue_client("controller", 1, valid_from=now - dt.timedelta(days=3))
    else:  # right CA, but a server certificate (no clientAuth usage)
        cert_key = pki.ca.issue_server("amp-x", "127.0.0.1", 1)

    with pytest.raises(httpx.TransportError):
        _info(agent, _client(pki, tmp_path, cert_key))

    # The refusal did not take the agent down.
    assert _info(agent, _client(pki, tmp_path, pki.ca.issue_client("c", 1))).status_code == 200


def test_driver_reports_an_unreachable_agent(pki: Pki, tmp_path: Path) -> None:
    async def run() -> None:
        driver = AgentAmphoraDriver(str(pki.ca_file), str(pki.client_cert), str(pki.client_key),
                                    port=free_port(), timeout=2)
        compute = ComputeInfo(compute_id="amp-gone", lb_network_ip="127.0.0.1")
        try:
            with pytest.raises(DriverError, match="amp-gone unreachable"):
                await driver.apply(compute, {"files": {"haproxy.cfg": ""}}, "d")
            with pytest.raises(DriverError, match=r"not ready after 0\.5s"):
                await driver.wait_ready(compute, 0.5)
        finally:
            await driver.aclose()

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 5
