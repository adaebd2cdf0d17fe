"""Named load balancers for the golden-file tests: each covers a few rendering features."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from render_aggregates import (
    http_site,
    l7policy,
    listener,
    load_balancer,
    member,
    monitor,
    pool,
    uid,
)

ALL_HEADERS = {"X-Forwarded-For": "true", "X-Forwarded-Port": "True", "X-Forwarded-Proto": "true",
               "X-Forwarded-IP": "true", "X-Client-IP": " TRUE ", "X-Real-IP": "true"}
VIP_V4 = "5b000000-0000-4000-8000-000000000003"


def http_headers_cidrs_timeouts() -> dict[str, Any]:
    lb = http_site()
    lb["listeners"][0].update(
        insert_headers=ALL_HEADERS, allowed_cidrs=["192.0.2.0/24", "198.51.100.7/32"],
        timeout_client_data=30000, timeout_member_connect=2000, timeout_member_data=40000,
        timeout_tcp_inspect=1500, connection_limit=1000)
    return lb


def tcp_leastconn_source_ip() -> dict[str, Any]:
    members = [member(1, 1, "10.0.1.11", 5432, weight=10),
               member(2, 1, "10.0.1.12", 5432, weight=0),  # draining
               member(3, 1, "10.0.1.13", 5432, backup=True,
                      monitor_address="10.0.2.13", monitor_port=9000)]
    p = pool(1, "TCP", "LEAST_CONNECTIONS", members=members,
             session_persistence={"type": "SOURCE_IP", "cookie_name": None,
                                  "persistence_timeout": None, "persistence_granularity": None},
             healthmonitor=monitor(1, 1, "TCP", delay=10, timeout=5, max_retries=3,
                                   max_retries_down=None))
    li = listener(1, "TCP", 5432, default_pool_id=p["id"], connection_limit=100000,
                  insert_headers={"X-Forwarded-For": "true"})  # ignored: not HTTP
    return load_balancer(listeners=[li], pools=[p])


def https_passthrough_tls_hello() -> dict[str, Any]:
    p = pool(1, "HTTPS", "SOURCE_IP", members=[member(1, 1, "10.0.1.11", 443)],
             healthmonitor=monitor(1, 1, "TLS-HELLO"))
    q = pool(2, "HTTPS", members=[member(2, 2, "10.0.1.12", 443)],
             healthmonitor=monitor(2, 2, "HTTPS", url_path="/status?full=1",
                                   expected_codes="200, 202", http_method="HEAD"))
    return load_balancer(listeners=[listener(1, "HTTPS", 443, default_pool_id=p["id"]),
                                    listener(2, "HTTPS", 8443, default_pool_id=q["id"])],
                         pools=[p, q])


def ipv6_source_ip_port_ping() -> dict[str, Any]:
    members = [member(1, 1, "2001:db8:1::11", 80, monitor_address="2001:db8:2::11"),
               member(2, 1, "2001:db8:1::12", 80)]
    p = pool(1, "TCP", "SOURCE_IP_PORT", members=members,
             session_persistence={"type": "SOURCE_IP"},
             healthmonitor=monitor(1, 1, "PING", delay=0, timeout=0))
    lb = load_balancer(vip_address="2001:db8::10",
                       additional_vips=[{"subnet_id": VIP_V4, "ip_address": "203.0.113.11"}],
                       listeners=[listener(1, "TCP", 80, default_pool_id=p["id"],
                                           allowed_cidrs=["2001:db8:ffff::/48"])],
                       pools=[p])
    return lb



def http_cookie() -> dict[str, Any]:
    lb = http_site()
    lb["pools"][0]["session_persistence"] = {"type": "HTTP_COOKIE", "cookie_name": None}
    lb["pools"][0]["healthmonitor"].update(type="HTTPS", http_version=1.100000023841858)
    return lb


def app_cookie() -> dict[str, Any]:
    lb = http_site()
    # Legal RFC 6265 token characters that are special to HAProxy's parser.
    lb["pools"][0]["session_persistence"] = {"type": "APP_COOKIE", "cookie_name": "sess'#$id"}
    lb["pools"][0]["lb_algorithm"] = "SOURCE_IP"
    return lb


def disabled_objects() -> dict[str, Any]:
    lb = http_site()
    lb["listeners"][0]["admin_state_up"] = False
    lb["pools"][0]["members"][0]["admin_state_up"] = False
    lb["pools"][0]["healthmonitor"]["admin_state_up"] = False
    second = pool(2, admin_state_up=False, members=[member(3, 2, "10.0.1.13")])
    lb["pools"].append(second)
    lb["listeners"].append(listener(2, port=8080, default_pool_id=second["id"]))
    return lb


def lb_admin_down() -> dict[str, Any]:
    lb = http_site()
    lb["admin_state_up"] = False
    return lb


def skipped_features() -> dict[str, Any]:
    proxy = pool(1, "PROXY", members=[member(1, 1, "10.0.1.11")],
                 healthmonitor=monitor(1, 1, "HTTP"))
    proxy2 = pool(2, "PROXYV2", members=[member(2, 2, "10.0.1.12")])
    udp = pool(3, "UDP", members=[member(3, 3, "10.0.1.13", 53)])
    tls = pool(4, "HTTP", tls_enabled=True, members=[member(4, 4, "10.0.1.14", 443)])
    unused = pool(5, "TCP", members=[member(5, 5, "10.0.1.15", 22)])
    listeners = [
        listener(1, "HTTP", 80, default_pool_id=proxy["id"],
                 l7policies=[l7policy(1, 1, 1), l7policy(2, 1, 2)]),
        listener(2, "TCP", 81, default_pool_id=proxy2["id"]),
        listener(3, "UDP", 53, default_pool_id=udp["id"]),
        listener(4, "TERMINATED_HTTPS", 443, default_pool_id=tls["id"],
                 default_tls_container_ref="https://secrets.example/v1/secrets/1"),
        listener(5, "SCTP", 3868),
        listener(6, "PROMETHEUS", 9100),
        listener(7, "HTTP", 82, default_pool_id=tls["id"]),
        listener(8, "HTTP", 83, default_pool_id=uid("pool", 99)),  # pool being deleted
        listener(9, "HTTP", 84),
    ]
    return load_balancer(listeners=listeners, pools=[proxy, proxy2, udp, tls, unused])


def _rule(n: int, policy_n: int, kind: str, compare: str, value: str,
          **over: Any) -> dict[str, Any]:
    rule = l7policy(policy_n, 1)["rules"][0]
    rule.update(id=uid("rule", n), type=kind, compare_type=compare, value=value, **over)
    return rule


def l7_policies() -> dict[str, Any]:
    """Every action and rule type, disabled objects, and positions out of id order."""
    lb = http_site()
    static = pool(2, members=[member(3, 2, "10.0.1.13")])
    off = pool(3, admin_state_up=False, members=[member(4, 3, "10.0.1.14")])
    lb["pools"] += [static, off]
    policies = [
        l7policy(1, 1, 3, action="REDIRECT_TO_POOL", redirect_pool_id=static["id"], rules=[
            _rule(1, 1, "PATH", "STARTS_WITH", "/js"),
            _rule(2, 1, "FILE_TYPE", "EQUAL_TO", "js"),
            _rule(3, 1, "HOST_NAME", "ENDS_WITH", ".example.com", invert=True)]),
        l7policy(2, 1, 1, action="REJECT", rules=[
            _rule(4, 2, "HEADER", "EQUAL_TO", "bad", key="X-Client"),
            _rule(5, 2, "COOKIE", "CONTAINS", "evil", key="session"),
            _rule(6, 2, "PATH", "REGEX", r"^/admin/(a|b)\.php$"),
            _rule(7, 2, "HEADER", "EQUAL_TO", '"two words"', key="X-Quoted"),
            _rule(8, 2, "PATH", "EQUAL_TO", "/never", admin_state_up=False)]),
        l7policy(3, 1, 2, action="REDIRECT_PREFIX", redirect_prefix="https://www.example.com",
                 redirect_http_code=301, rules=[
                     _rule(9, 3, "HOST_NAME", "EQUAL_TO", "www.example.com")]),
        l7policy(4, 1, 4, action="REDIRECT_TO_URL", redirect_http_code=308,
                 redirect_url="https://example.com/moved?x=%41'#$(HOME)", rules=[
                     _rule(10, 4, "SSL_CONN_HAS_CERT", "EQUAL_TO", "True"),
                     _rule(11, 4, "SSL_VERIFY_RESULT", "EQUAL_TO", "0"),
                     _rule(12, 4, "SSL_DN_FIELD", "STARTS_WITH", "ops", key="OU")]),
        l7policy(5, 1, 5, action="REDIRECT_TO_URL", redirect_url="http://x.example/",
                 rules=[_rule(13, 5, "PATH", "CONTAINS", "x")]),
        l7policy(6, 1, 6, admin_state_up=False, rules=[_rule(14, 6, "PATH", "CONTAINS", "y")]),
        l7policy(7, 1, 7, rules=[]),
        l7policy(8, 1, 8, action="REDIRECT_TO_POOL", redirect_pool_id=off["id"],
                 rules=[_rule(15, 8, "PATH", "CONTAINS", "z")]),
    ]
    lb["listeners"][0]["l7policies"] = policies
    return lb


def prometheus() -> dict[str, Any]:
    return load_balancer(listeners=[listener(1, "PROMETHEUS", 9100,
                                             allowed_cidrs=["198.51.100.0/24"])])


def empty() -> dict[str, Any]:
    return load_balancer(vip_address=None)


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    f.__name__: f for f in (
        http_headers_cidrs_timeouts, tcp_leastconn_source_ip, https_passthrough_tls_hello,
        ipv6_source_ip_port_ping, http_cookie, app_cookie, disabled_objects, lb_admin_down,
        skipped_features, l7_policies, prometheus, empty,
    )
}
