"""PUT /v1/certificate: the agent swaps its server certificate for new connections only."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, Pki

from lbaas.certs import CertificateAuthority
from lbaas.drivers.base import DriverError


@pytest.fixture
def own_agent(tmp_path: Path, pki: Pki) -> Iterator[AgentProcess]:
    """An agent whose server certificate files are its own (the session pki is shared)."""
    mine = dataclasses.replace(pki, server_cert=tmp_path / "server.pem",
                               server_key=tmp_path / "server.key")
    shutil.copy(pki.server_cert, mine.server_cert)
    shutil.copy(pki.server_key, mine.server_key)
    a = AgentProcess(tmp_path / "amp", mine)
    try:
        a.start()
        yield a
    finally:
        a.stop()


def _serial(agent: AgentProcess) -> str:
    return str(agent.call("served_certificate", agent.compute)["serialNumber"]).lower()


def test_new_certificate_is_served_to_new_connections(own_agent: AgentProcess, pki: Pki) -> None:
    before = _serial(own_agent)
    cert, key = pki.ca.issue_server("amp-test", "127.0.0.1", 30)

    async def rotate_on_one_connection() -> tuple[dict[str, str], str]:
        driver = own_agent.driver()
        try:
            await driver.info(own_agent.compute)  # opens a keep-alive connection
            answer = await driver.replace_certificate(own_agent.compute, cert, key)
            # the pooled connection made with the old certificate still works
            info = await driver.info(own_agent.compute)
            return dict(answer), info["amphora_id"]
        finally:
            await driver.aclose()

    answer, amphora_id = asyncio.run(rotate_on_one_connection())
    assert amphora_id == "amp-test"
    after = _serial(own_agent)
    assert after != before and after.lstrip("0") == answer["serial"].lstrip("0")
    assert own_agent.pki.server_cert.read_text() == cert
    # a restarted agent serves the new certificate from its files
    own_agent.stop()
    own_agent.start()
    assert _serial(own_agent) == after


def test_unusable_certificates_are_refused_and_the_old_one_still_serves(
        own_agent: AgentProcess, pki: Pki, tmp_path: Path) -> None:
    before = _serial(own_agent)
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca")
    foreign = other.issue_server("amp-test", "127.0.0.1", 30)
    cert, _ = pki.ca.issue_server("amp-test", "127.0.0.1", 30)
    _, wrong_key = pki.ca.issue_server("amp-test", "127.0.0.1", 30)
    for pair, reason in ((foreign, "not issued by this agent's CA"),
                         ((cert, wrong_key), "key does not match")):
        with pytest.raises(DriverError, match=reason):
            own_agent.call("replace_certificate", own_agent.compute, *pair)
    with pytest.raises(DriverError, match="not a PEM"):
        own_agent.call("replace_certificate", own_agent.compute, "junk", "junk")
    assert _serial(own_agent) == before
