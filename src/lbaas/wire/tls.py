"""The TLS server context of the amphora agent and the host-agent: TLS >= 1.2 and a client
certificate from the controller's CA.

Key choice: ``CERT_REQUIRED`` with only that CA loaded, so an unauthenticated peer never reaches
HTTP at all. A module of its own so that ``python -m lbaas.agent`` can check the files before it
execs the supervisor without importing the worker's modules.
"""

from __future__ import annotations

import ssl


def server_ssl_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cafile=ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
