"""Render one pool as an HAProxy backend: balancing, persistence, health checks and servers.

Key choices: the backend's mode and member timeouts come from the listener whose default pool
it is (operator defaults when no listener uses it). SOURCE_IP_PORT hashes "src:src_port" with
``balance hash`` (the source port is put in a transaction variable first: ``concat`` takes
variables only). TLS-HELLO is a real TLS handshake (``check-ssl verify none``), not
``option ssl-hello-chk`` (an SSLv3 hello). PING becomes a TCP connect check: HAProxy has no
ICMP check and the amphora has no ``ping`` binary. A disabled health monitor means no ``check``.
Re-encrypting pools (tls_enabled) get ``render.tls.server_options`` on every server when the
caller passes ``certificates``; without them they fail closed (a backend without servers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbaas.domain import constants as c
from lbaas.domain.spec import HealthMonitorSpec, ListenerSpec, MemberSpec, PoolSpec
from lbaas.render import escaping as e
from lbaas.render.escaping import RenderError
from lbaas.render.options import RenderOptions
from lbaas.render.tls import server_options as tls_server_options
from lbaas.render.validate import MAX_TIMER_S

BALANCE = {
    "ROUND_ROBIN": ["balance roundrobin"],
    "LEAST_CONNECTIONS": ["balance leastconn"],
    "SOURCE_IP": ["balance source"],
    "SOURCE_IP_PORT": ["tcp-request content set-var(txn.lbaas_src_port) src_port",
                       "balance hash src,concat(:,txn.lbaas_src_port)"],
}
STICK_SIZE = "10k"
HTTP_MONITORS = ("HTTP", "HTTPS")
TLS_CHECKS = ("HTTPS", "TLS-HELLO")
PROXY_PROTOCOL = {"PROXY": "send-proxy", "PROXYV2": "send-proxy-v2"}


def render_backend(pool: PoolSpec, listener: ListenerSpec | None, ipv6: bool,
                   options: RenderOptions,
                   certificates: Mapping[str, str] | None = None) -> list[str]:
    pid = e.ident("pool id", pool.id)
    protocol = e.choice("pool protocol", pool.protocol, c.POOL_PROTOCOLS)
    if protocol in c.UDP_LIKE:
        return [f"# pool {pid}: {protocol} pools are not rendered by HAProxy yet"]
    mode = _mode(protocol, listener)
    out = [f"backend {pid}", f"    mode {mode}"]
    if not e.flag("pool admin_state_up", pool.admin_state_up):
        out.append("    disabled")
    algorithm = e.choice("lb_algorithm", pool.lb_algorithm, c.LB_ALGORITHMS)
    out += [f"    {line}" for line in BALANCE[algorithm]]
    for name, field in (("connect", "timeout_member_connect"), ("server", "timeout_member_data")):
        value = None if listener is None else getattr(listener, field)
        value = getattr(options, field) if value is None else value
        out.append(f"    timeout {name} {e.integer(field, value, 0, c.MAX_TIMEOUT_MS)}ms")
    tunnel = e.integer("tunnel_timeout_ms", options.tunnel_timeout_ms, 0, c.MAX_TIMEOUT_MS)
    out.append(f"    timeout tunnel {tunnel}ms")
    persistence = e.json_value("session_persistence", pool.session_persistence)
    sp_lines, cookie = _persistence(persistence, mode, ipv6)
    out += [f"    {line}" for line in sp_lines]
    monitor = pool.healthmonitor  # None when there is none or it is disabled: no checks
    if monitor is not None and not e.flag("healthmonitor admin_state_up",
                                          monitor.admin_state_up):
        monitor = None
    if monitor is not None:
        with e.blame("health_monitor", monitor.id):
            out += [f"    {line}" for line in _monitor_lines(monitor)]
    tls = ""
    if e.flag("pool tls_enabled", pool.tls_enabled):
        if certificates is None:
            out.append(f"    # pool {pid}: TLS to members is not rendered yet: no servers")
            return out
        tls = tls_server_options(pool, certificates)
    members = e.by_id(pool.members)
    server_options = None
    if monitor is not None:
        with e.blame("health_monitor", monitor.id):
            server_options = _check_options(monitor)
    for member in members:
        with e.blame("member", member.id):
            out.append("    " + _server(member, cookie, PROXY_PROTOCOL.get(protocol),
                                        server_options) + tls)
    return out


def _mode(protocol: str, listener: ListenerSpec | None) -> str:
    if protocol == "HTTP":
        return "http"
    if protocol in PROXY_PROTOCOL and listener is not None \
            and listener.protocol in ("HTTP", "TERMINATED_HTTPS"):
        return "http"
    return "tcp"


def _persistence(sp: Any, mode: str, ipv6: bool) -> tuple[list[str], bool]:
    """Lines for the backend and whether servers carry a ``cookie <member id>``."""
    if not sp:
        return [], False
    if not isinstance(sp, Mapping):
        raise RenderError("session_persistence: expected an object")
    kind = e.choice("session_persistence type", sp.get("type"), c.SESSION_PERSISTENCE_TYPES)
    if kind == "SOURCE_IP":
        # An ipv6 table also holds IPv4 clients (as mapped addresses).
        table = "ipv6" if ipv6 else "ip"
        return [f"stick-table type {table} size {STICK_SIZE}", "stick on src"], False
    if mode != "http":
        return [f"# {kind} persistence needs an HTTP pool: not rendered"], False
    if kind == "HTTP_COOKIE":
        return ["cookie SRV insert indirect nocache"], True
    if sp.get("cookie_name") is None:
        raise RenderError("session_persistence: APP_COOKIE needs a cookie_name")
    arg = e.sample_arg(e.cookie_name(sp["cookie_name"]))
    return [f"stick-table type string len 64 size {STICK_SIZE}",
            f"stick store-response {e.quote(f'res.cook({arg})')}",
            f"stick match {e.quote(f'req.cook({arg})')}"], False


def _monitor_lines(hm: HealthMonitorSpec) -> list[str]:
    kind = e.choice("healthmonitor type", hm.type, tuple(c.TCP_POOL_MONITORS))
    timeout = e.integer("healthmonitor timeout", hm.timeout, 0, MAX_TIMER_S)
    out = [f"timeout check {timeout}s"] if timeout > 0 else []
    if kind not in HTTP_MONITORS:
        return out
    method = e.choice("http_method", hm.http_method or "GET", c.HTTP_METHODS)
    path = e.url_path(hm.url_path or "/")
    raw = hm.http_version
    # MariaDB FLOAT is single precision: 1.1 comes back as 1.100000023841858.
    version = 1.0 if raw is None else round(raw, 1) if isinstance(raw, float) else raw
    if isinstance(version, bool):
        raise RenderError(f"http_version: {raw!r} is not a number")
    e.choice("http_version", version, c.HTTP_VERSIONS)
    send = f"http-check send meth {method} uri {e.quote(path)} ver HTTP/{float(version):.1f}"
    if hm.domain_name is not None:
        send += f" hdr Host {e.quote(e.domain_name(hm.domain_name))}"
    codes = e.expected_codes(hm.expected_codes or "200")
    return [*out, "option httpchk", send, f"http-check expect status {codes}"]


def _check_options(hm: HealthMonitorSpec) -> str:
    delay = e.integer("healthmonitor delay", hm.delay, 0, MAX_TIMER_S)
    rise = e.integer("max_retries", hm.max_retries, 1, 10)
    down = hm.max_retries_down
    fall = e.integer("max_retries_down", 3 if down is None else down, 1, 10)
    # HAProxy refuses "inter 0"; Octavia allows delay 0, read here as "as often as allowed".
    out = f"check inter {max(delay, 1)}s fall {fall} rise {rise}"
    if hm.type in TLS_CHECKS:
        out += " check-ssl verify none"
    return out


def _server(member: MemberSpec, cookie: bool, proxy: str | None,
            check: str | None) -> str:
    mid = e.ident("member id", member.id)
    where = e.host_port("member address", member.address, member.protocol_port)
    weight = member.weight
    words = [f"server {mid} {where}",
             f"weight {e.integer('member weight', 1 if weight is None else weight, 0, 256)}"]
    if e.flag("member backup", member.backup):
        words.append("backup")
    if not e.flag("member admin_state_up", member.admin_state_up):
        words.append("disabled")
    if cookie:
        words.append(f"cookie {mid}")
    if proxy:
        words.append(proxy)
    if check is not None:
        words.append(check)
        if member.monitor_address is not None:
            words.append(f"addr {e.host('monitor_address', member.monitor_address)}")
        if member.monitor_port is not None:
            words.append(f"port {e.port('monitor_port', member.monitor_port)}")
    return " ".join(words)
