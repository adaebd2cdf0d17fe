"""The worker's idle exit is quiet: a keep-alive client that never closes its TLS session
(the controller's pooled connection) leaves no traceback in the agent's log."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from agent_helpers import Pki, wait_for
from test_supervisor import IDLE_EXIT, SupervisedAgent, serve_one_backend
from test_supervisor import supervised as supervised  # the fixture

from lbaas.wire.agent_api import STATUS_PATH


def _keep_alive_client(agent: SupervisedAgent, pki: Pki) -> ssl.SSLSocket:
    """One request on a connection kept open, never sending close_notify."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    ctx.check_hostname = False
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", agent.port), timeout=5))
    sock.sendall(f"GET {STATUS_PATH} HTTP/1.1\r\nHost: amphora\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 ")
    return sock


def test_idle_exit_with_a_client_that_never_closes_logs_no_traceback(
        supervised: SupervisedAgent, pki: Pki, backends: Any) -> None:
    serve_one_backend(supervised, backends)
    client = _keep_alive_client(supervised, pki)
    try:
        assert wait_for(lambda: not supervised.workers(), IDLE_EXIT * 2 + 10)
    finally:
        client.close()
    log = (supervised.base.parent / f"agent-{supervised.port}.log").read_text()
    assert "idle for" in log
    assert "Traceback" not in log and "CancelledError" not in log, log
