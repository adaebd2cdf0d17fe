"""``lbaas backend ctl --address A down|up|status``: switch a demo backend's health check.

Key choice: every ``lbaas backend`` also serves on a unix socket in the data directory
(``backends/lbbe-<address hex>.sock``), so this command reaches the backend without sending a
packet over any network: it works when the member network is isolated from the host, and it
can never reach something on the host's real network that has the same address.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

from lbaas.drivers.local import names
from lbaas.main.options import add_options, settings_from_args

ACTIONS = {"down": ("POST", "/healthcheck/down"), "up": ("POST", "/healthcheck/up"),
           "status": ("GET", "/healthcheck")}


def control_socket(data_dir: Path, address: str) -> Path:
    return data_dir.resolve() / "backends" / f"{names.backend_netns(address)}.sock"


def request(path: Path, method: str, target: str, timeout: float = 5.0) -> tuple[int, str]:
    """One HTTP/1.1 request over the unix socket; (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: lbaas-backend-ctl\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace")


def cmd_backend_ctl(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    address = str(ipaddress.ip_address(args.address))
    path = control_socket(settings.data_dir, address)
    method, target = ACTIONS[args.action]
    try:
        status, body = request(path, method, target)
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"lbaas backend ctl: no demo backend {address} runs with data directory "
              f"{settings.data_dir} (no {path})", file=sys.stderr)
        return 1
    except (OSError, ValueError, IndexError) as exc:
        print(f"lbaas backend ctl: {path}: {exc}", file=sys.stderr)
        return 1
    state = body.strip()
    if status not in (200, 503) or state not in ("ok", "down"):
        print(f"lbaas backend ctl: {path}: unexpected answer {status} {state!r}",
              file=sys.stderr)
        return 1
    now = "answers" if args.action == "status" else "now answers"
    print(f"backend {address}: GET /healthcheck {now} {200 if state == 'ok' else 503} {state}")
    return 0


def add_ctl_parser(subparsers: Any, common: tuple[str, ...]) -> None:
    text = ("switch a running demo backend's health check down or up, or show it, through "
            "its unix socket in the data directory (no network traffic)")
    p = subparsers.add_parser("ctl", help=text, prog="lbaas backend ctl",
                              description=text[:1].upper() + text[1:] + ".")
    add_options(p, *common)
    p.add_argument("--address", required=True,
                   help="the backend's address, as given to lbaas backend (required)")
    p.add_argument("action", choices=sorted(ACTIONS),
                   help="down: /healthcheck answers 503; up: 200 again; status: show it")
    p.set_defaults(func=cmd_backend_ctl)
