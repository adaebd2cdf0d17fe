"""``python -m lbaas.agent``: the amphora agent (HTTPS API with client certificates).

Example:
  python -m lbaas.agent --base-dir /var/lib/lbaas-agent --listen 0.0.0.0:9443 \\
      --ca-file ca.pem --cert-file server.pem --key-file server.key --amphora-id AMP_ID

This checks the arguments and the TLS files, resets inherited signal dispositions, then
replaces itself (same pid) with the resident supervisor (``supervisor.py``), which starts
without the modules used here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from lbaas.agent.heartbeat import parse_target
from lbaas.agent.layout import HAPROXY_SOCK, RUN
from lbaas.wire.files import AGENT_PORT
from lbaas.wire.tls import server_ssl_context

_MAX_UNIX_PATH = 92  # sun_path is 108 bytes; HAProxy binds "<path>.<pid>.tmp" first
SUPERVISOR = "from lbaas.agent.supervisor import main; main()"
_PR_SET_CHILD_SUBREAPER = 36


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, AGENT_PORT
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    parser.add_argument("--data-netns", default="", metavar="NAME",
                        help="network namespace (under /run/netns) holding the VIP and member "
                             "legs: HAProxy, keepalived, nftables and the member probes run "
                             "there, the agent stays here with the management leg "
                             "(default: this namespace)")
    parser.add_argument("--heartbeat-target", action="append", default=[], type=parse_target,
                        metavar="HOST:PORT", help="a health manager (repeatable; used in turn)")
    parser.add_argument("--heartbeat-key-file", type=Path,
                        help="file holding the HMAC key that signs heartbeats")
    parser.add_argument("--heartbeat-interval", type=float, default=1.0, metavar="S",
                        help="seconds between heartbeats (default 1.0)")
    parser.add_argument("--idle-exit", type=float, default=10.0, metavar="S",
                        help="the API worker exits after S quiet seconds, and closes keep-alive "
                             "connections idle that long; 0: never (default 10)")
    args = parser.parse_args(argv)
    if args.heartbeat_target and args.heartbeat_key_file is None:
        parser.error("--heartbeat-target needs --heartbeat-key-file")
    args.base_dir = args.base_dir.resolve()
    if args.data_netns and ("/" in args.data_netns or args.data_netns in (".", "..")
                            or not os.path.exists(os.path.join("/run/netns", args.data_netns))):
        parser.error(f"--data-netns {args.data_netns}: no such namespace in /run/netns")
    if len(str(args.base_dir / RUN / HAPROXY_SOCK).encode()) > _MAX_UNIX_PATH:
        parser.error(f"--base-dir {args.base_dir} is too long for HAProxy's unix socket paths")
    try:
        server_ssl_context(args.ca_file, args.cert_file, args.key_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        parser.error(f"unusable TLS files: {exc}")
    return args


def _become_subreaper() -> None:
    """HAProxy daemonizes: its orphaned processes then become the supervisor's children (which
    reaps them) instead of init's. The setting survives the exec into the supervisor, which thus
    needs no ctypes."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _default_signal_dispositions() -> None:
    """An ignored signal stays ignored across fork and exec: an agent started under ``nohup``
    (SIGHUP) or as a shell's background job (SIGINT, SIGQUIT) would hand that to the worker,
    HAProxy, keepalived (reloaded with SIGHUP) and their scripts (``/bin/sh`` cannot even trap
    a signal ignored at its start). The agent is a daemon: it and all it starts get the
    defaults. SIGPIPE and SIGXFSZ stay: Python ignores them itself and restores them in the
    processes it starts."""
    for sig in signal.valid_signals() - {signal.SIGPIPE, signal.SIGXFSZ}:
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, port = args.listen
    options = {"base_dir": str(args.base_dir), "host": host, "port": port,
               "ca_file": os.path.abspath(args.ca_file),
               "cert_file": os.path.abspath(args.cert_file),
               "key_file": os.path.abspath(args.key_file), "amphora_id": args.amphora_id,
               "heartbeat_key_file": os.path.abspath(args.heartbeat_key_file or ""),
               "heartbeat_interval": args.heartbeat_interval, "idle_exit": args.idle_exit,
               "data_netns": args.data_netns}
    supervisor_argv = [f"--{key}={value}" for key, value in options.items()]
    supervisor_argv += [f"--heartbeat_target={h}:{p}" for h, p in args.heartbeat_target]
    _become_subreaper()
    _default_signal_dispositions()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", SUPERVISOR, *supervisor_argv])


if __name__ == "__main__":
    sys.exit(main())
