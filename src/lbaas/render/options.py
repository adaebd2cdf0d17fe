"""Operator defaults and process limits the renderer needs (kept apart to avoid import cycles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    """Operator defaults (settings.HaproxySettings) and process limits; times in ms."""

    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0
    default_connection_limit: int = 50000
    # Global maxconn: the open-files hard limit here is 20000 and HAProxy needs ~2 fds each.
    max_total_conn: int = 8000
    # Upgraded connections (WebSocket, CONNECT) would otherwise be cut at timeout server/client.
    tunnel_timeout_ms: int = 3600000
    # Privileges HAProxy drops to once its sockets are bound and its files read (``global``
    # user/group/chroot). "" = stay root: the default here, for callers that run a rendered file
    # by hand (tests); the service passes settings.haproxy's (nobody/nogroup, chroot on).
    user: str = ""
    group: str = ""
    chroot: bool = False
