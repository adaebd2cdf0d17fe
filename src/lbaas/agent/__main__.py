"""``python -m lbaas.agent``: the amphora agent (HTTPS API with client certificates).

Example:
  python -m lbaas.agent --base-dir /var/lib/lbaas-agent --listen 0.0.0.0:9443 \\
      --ca-file ca.pem --cert-file server.pem --key-file server.key --amphora-id AMP_ID
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from lbaas.agent.certificate import ServerCertificate
from lbaas.agent.heartbeat import HeartbeatSender, parse_target, read_key
from lbaas.agent.http import serve, server_ssl_context
from lbaas.agent.service import Agent
from lbaas.wire.agent_api import AGENT_PORT

_MAX_UNIX_PATH = 92  # sun_path is 108 bytes; HAProxy binds "<path>.<pid>.tmp" first


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, AGENT_PORT
    return host.strip("[]") or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lbaas-agent",
        description="The amphora agent: an HTTPS API (client certificates required) that "
                    "applies configuration bundles to HAProxy.")
    parser.add_argument("--base-dir", required=True, type=Path)
    parser.add_argument("--listen", default=f"0.0.0.0:{AGENT_PORT}", type=_listen,
                        help=f"HOST:PORT or [V6]:PORT (default 0.0.0.0:{AGENT_PORT})")
    parser.add_argument("--ca-file", required=True, help="CA that signs controller certificates")
    parser.add_argument("--cert-file", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--amphora-id", default=socket.gethostname(),
                        help="reported by /v1/info and /v1/status (default: the host name)")
    parser.add_argument("--heartbeat-target", action="append", default=[], type=parse_target,
                        metavar="HOST:PORT", help="a health manager (repeatable; used in turn)")
    parser.add_argument("--heartbeat-key-file", type=Path,
                        help="file holding the HMAC key that signs heartbeats")
    parser.add_argument("--heartbeat-interval", type=float, default=1.0, metavar="S",
                        help="seconds between heartbeats (default 1.0)")
    args = parser.parse_args(argv)
    if args.heartbeat_target and args.heartbeat_key_file is None:
        parser.error("--heartbeat-target needs --heartbeat-key-file")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, port = args.listen
    base = args.base_dir.resolve()
    if len(str(base / "run" / "haproxy.sock").encode()) > _MAX_UNIX_PATH:
        parser.error(f"--base-dir {base} is too long for HAProxy's unix socket paths")
    ctx = server_ssl_context(args.ca_file, args.cert_file, args.key_file)
    agent = Agent(base, args.amphora_id)
    if args.heartbeat_target:
        agent.companions.append(HeartbeatSender(agent, args.heartbeat_target,
                                                read_key(args.heartbeat_key_file),
                                                args.heartbeat_interval))
    certificate = ServerCertificate(ctx, args.cert_file, args.key_file, args.ca_file)
    serve(agent, host, port, ctx, certificate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
