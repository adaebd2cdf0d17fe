"""Render haproxy.cfg for one load balancer from its aggregate (``lbaas.domain.spec``).

Pure: no I/O, no clock; equal aggregates give byte-equal files. Objects are walked sorted by id.
Naming: frontend = listener id, backend = pool id, server = member id, so the agent can address
``<pool id>/<member id>`` through the runtime API. HTTP listeners are ``mode http``; HTTPS
(pass-through) and TCP are ``mode tcp``; TERMINATED_HTTPS is ``mode http`` with the TLS options
of ``render.tls`` (only when the caller passes ``certificates``; without them TLS listeners and
re-encrypting pools are left out with a comment). UDP and SCTP are left out with a comment
line naming the object, never with an error. L7 policies come from ``render.l7``; PROMETHEUS
listeners serve HAProxy's built-in exporter on ``/metrics``. Daemon mode and the pid file come from
the agent's command line (``haproxy -D -p``), not from this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbaas.domain import constants as c
from lbaas.domain.spec import ListenerSpec, LoadBalancerSpec
from lbaas.render import escaping as e
from lbaas.render.backend import render_backend
from lbaas.render.escaping import RenderError
from lbaas.render.l7 import redirect_pool_ids, render_l7_policies
from lbaas.render.options import RenderOptions
from lbaas.render.tls import (
    CRT_BASE,
    bind_options,
    frontend_lines,
    needs_crt_base,
    terminates_tls,
)
from lbaas.render.validate import MAX_INT32

# HAProxy mode for each listener protocol rendered now; the others get a comment.
LISTENER_MODES = {"HTTP": "http", "HTTPS": "tcp", "TCP": "tcp", "PROMETHEUS": "http",
                  "TERMINATED_HTTPS": "http"}
PROMETHEUS_LINES = ["http-request use-service prometheus-exporter if { path /metrics }",
                    "http-request deny deny_status 404"]
# allowed_cidrs: an ACL named so that no L7 rule's ACL (named by its id) can clash.
ALLOWED_ACL = "lbaas-allowed-cidrs"
CIDRS_PER_LINE = 32
STATS_SOCKET = ('stats socket "${LBAAS_RUN_DIR}/haproxy.sock" '
                "mode 600 level admin expose-fd listeners")
# insert_headers key -> the lines it adds to an HTTP frontend (X-SSL-* need TERMINATED_HTTPS).
# An empty directory the agent makes (root-owned, mode 0555) in each amphora's run directory:
# agent/haproxy.py makes wire.files.HAPROXY_CHROOT there (render may not import wire; a test
# checks the two names agree). HAProxy chroots after binding its sockets and reading its files.
CHROOT_DIR = "haproxy-chroot"
CHROOT = f'chroot "${{LBAAS_RUN_DIR}}/{CHROOT_DIR}"'
HEADER_LINES = {
    "X-Forwarded-For": "option forwardfor",
    "X-Forwarded-Port": "http-request set-header X-Forwarded-Port %[dst_port]",
    "X-Forwarded-Proto": "http-request set-header X-Forwarded-Proto http",
    "X-Forwarded-IP": "http-request set-header X-Forwarded-IP %[src]",
    "X-Client-IP": "http-request set-header X-Client-IP %[src]",
    "X-Real-IP": "http-request set-header X-Real-IP %[src]",
}


def render_haproxy_config(lb: LoadBalancerSpec, options: RenderOptions,
                          certificates: Mapping[str, str] | None = None) -> str:
    """The whole haproxy.cfg text for ``lb``; raises ``RenderError`` on any unsafe value.

    ``certificates``: PEM texts by file stem (``render.tls.certificate_needs``)."""
    lb_id = e.ident("load_balancer id", lb.id)
    maxconn = e.integer("max_total_conn", options.max_total_conn, 1, 1_000_000)
    lines = [
        f"# load balancer {lb_id}: rendered by lbaas, replaced whole, never edited",
        "global",
        f"    maxconn {maxconn}",
        f"    {STATS_SOCKET}",
        *_privilege_lines(options),
        *([f"    {CRT_BASE}"] if certificates is not None and needs_crt_base(lb) else []),
        "",
        "defaults",
        "    mode tcp",
        "    retries 3",
        "    option redispatch",
        f"    timeout connect {_ms('timeout_member_connect', options.timeout_member_connect)}",
        f"    timeout client {_ms('timeout_client_data', options.timeout_client_data)}",
        f"    timeout server {_ms('timeout_member_data', options.timeout_member_data)}",
    ]
    listeners = e.by_id(lb.listeners)
    pools = e.by_id(lb.pools)
    rendered_pools = {e.ident("pool id", p.id): e.flag("pool admin_state_up",
                                                              p.admin_state_up)
                      for p in pools if p.protocol not in c.UDP_LIKE}
    binds = _vip_addresses(lb) if any(li.protocol in LISTENER_MODES
                                      for li in listeners) else []
    lb_up = e.flag("load_balancer admin_state_up", lb.admin_state_up)
    owner: dict[str, ListenerSpec] = {}
    for listener in listeners:
        lines.append("")
        with e.blame("listener", listener.id):
            lines += _frontend(listener, binds, lb_up, rendered_pools, options, certificates)
        pool_id = listener.default_pool_id
        if pool_id in rendered_pools and listener.protocol in LISTENER_MODES:
            owner.setdefault(pool_id, listener)
    for listener in listeners:  # pools reached only through L7 policies take their listener's
        if LISTENER_MODES.get(listener.protocol) == "http":
            for pool_id in redirect_pool_ids(listener):
                owner.setdefault(pool_id, listener)
    ipv6 = any(e.ip("vip_address", a).version == 6 for a in _raw_vips(lb))
    for pool in pools:
        lines.append("")
        with e.blame("pool", pool.id):
            lines += render_backend(pool, owner.get(pool.id), ipv6, options, certificates)
    return "\n".join(lines) + "\n"


def _privilege_lines(options: RenderOptions) -> list[str]:
    """``user``/``group``/``chroot``: what HAProxy drops to once its listeners and stats socket
    are bound and its certificates read (a daemon reloaded with ``-x`` starts as root again)."""
    lines = [f"    {key} {e.quote(value)}" for key, value in (("user", options.user),
                                                             ("group", options.group)) if value]
    return lines + ([f"    {CHROOT}"] if options.chroot else [])


def _ms(field: str, value: Any) -> str:
    return f"{e.integer(field, value, 0, c.MAX_TIMEOUT_MS)}ms"


def _raw_vips(lb: LoadBalancerSpec) -> list[Any]:
    extra = [v.get("ip_address") for v in e.objects("additional_vips", lb.additional_vips)]
    return [a for a in [lb.vip_address, *extra] if a is not None]


def _vip_addresses(lb: LoadBalancerSpec) -> list[str]:
    if lb.vip_address is None:
        raise RenderError("vip_address: a load balancer with listeners needs a VIP address")
    return [e.host("vip_address", a) for a in _raw_vips(lb)]


def _frontend(listener: ListenerSpec, vips: list[str], lb_up: bool,
              pools: dict[str, bool], options: RenderOptions,
              certificates: Mapping[str, str] | None = None) -> list[str]:
    lid = e.ident("listener id", listener.id)
    protocol = e.choice("listener protocol", listener.protocol, c.LISTENER_PROTOCOLS)
    if protocol not in LISTENER_MODES:
        return [f"# listener {lid}: {protocol} listeners are not rendered by HAProxy yet"]
    mode = LISTENER_MODES[protocol]
    # Without certificates (no data plane, e.g. golden files) TERMINATED_HTTPS is left out and
    # a PROMETHEUS listener is served without TLS.
    tls = terminates_tls(listener) and certificates is not None
    if protocol == "TERMINATED_HTTPS" and certificates is None:
        return [f"# listener {lid}: {protocol} listeners are not rendered by HAProxy yet"]
    ssl = bind_options(listener, certificates) if tls and certificates is not None else ""
    port = e.port("listener protocol_port", listener.protocol_port)
    out = [f"frontend {lid}", f"    mode {mode}"]
    out += [f"    bind {vip}:{port}{ssl}" for vip in vips]
    out.append(f"    maxconn {_connection_limit(listener.connection_limit, options)}")
    if not (lb_up and e.flag("listener admin_state_up", listener.admin_state_up)):
        out.append("    disabled")
    out.append(f"    timeout client {_timeout(listener, 'timeout_client_data', options)}")
    inspect = _value(listener, "timeout_tcp_inspect", options)
    if e.integer("timeout_tcp_inspect", inspect, 0, c.MAX_TIMEOUT_MS) > 0:
        out.append(f"    tcp-request inspect-delay {inspect}ms")
    raw_cidrs = e.items("allowed_cidrs", listener.allowed_cidrs)
    cidrs = [e.cidr("allowed_cidrs", x) for x in raw_cidrs]
    if cidrs:
        # Lines with one ACL name are ORed: any number of networks fits in 64-word lines.
        for start in range(0, len(cidrs), CIDRS_PER_LINE):
            out.append(f"    acl {ALLOWED_ACL} src {' '.join(cidrs[start:start + CIDRS_PER_LINE])}")
        out.append(f"    tcp-request connection reject if !{ALLOWED_ACL}")
    if mode == "http":
        # On a reload the old worker otherwise closes idle keep-alive connections at once, and a
        # client sending its next request at that moment gets no answer.
        out.append("    option idle-close-on-response")
        headers = e.json_value("insert_headers", listener.insert_headers)
        out += [f"    {line}" for line in _header_lines(headers, https=tls)]
        out += [f"    {line}" for line in (frontend_lines(listener) if tls else [])]
    if protocol == "PROMETHEUS":
        out += [f"    {line}" for line in PROMETHEUS_LINES]
    elif mode == "http":
        out += render_l7_policies(listener, pools)
    pool_id = listener.default_pool_id
    if pool_id is not None:
        pool_id = e.ident("listener default_pool_id", pool_id)
        if pool_id in pools:
            out.append(f"    default_backend {pool_id}")
        else:
            out.append(f"    # default pool {pool_id} is not rendered: no backend")
    return out


def _value(listener: ListenerSpec, field: str, options: RenderOptions) -> Any:
    value = getattr(listener, field)
    return getattr(options, field) if value is None else value


def _timeout(listener: ListenerSpec, field: str, options: RenderOptions) -> str:
    return _ms(field, _value(listener, field, options))


def _connection_limit(value: Any, options: RenderOptions) -> int:
    limit = options.default_connection_limit if value is None or value == -1 else value
    return min(e.integer("connection_limit", limit, 0, MAX_INT32), options.max_total_conn)


def _header_lines(headers: Any, https: bool = False) -> list[str]:
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise RenderError(f"insert_headers: expected an object, got {type(headers).__name__}")
    for key in headers:
        e.choice("insert_headers key", key, (*c.HTTP_INSERT_HEADERS, *c.SSL_CLIENT_HEADERS))
    # X-SSL-* only make sense on TERMINATED_HTTPS listeners; they are skipped here.
    lines = [line for key, line in HEADER_LINES.items()
             if key in headers and e.header_flag(f"insert_headers {key}", headers[key])]
    return [f"{line}s" if https and "X-Forwarded-Proto" in line else line for line in lines]
