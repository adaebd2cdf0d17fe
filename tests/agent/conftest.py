"""Fixtures for the amphora agent tests: a CA with certificates, HTTP backends on loopback and
``python -m lbaas.agent`` started as real processes (supervisor, worker, HAProxy daemon) on a
random port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, Backend, Pki

from lbaas.certs import CertificateAuthority


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.load_or_create(d / "ca")
    cert, key = ca.issue_server("amp-test", "127.0.0.1", 2)
    (d / "server.pem").write_text(cert)
    (d / "server.key").write_text(key)
    files = ca.ensure_client_files("controller", d / "client", days=2)
    return Pki(ca, d, files.ca_file, d / "server.pem", d / "server.key",
               files.cert_file, files.key_file)


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        made.append(Backend(name))
        return made[-1]

    yield make
    for b in made:
        b.close()


@pytest.fixture
def agent(tmp_path: Path, pki: Pki) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path / "amp", pki)
    try:
        a.start()
        yield a
    finally:
        a.stop()
