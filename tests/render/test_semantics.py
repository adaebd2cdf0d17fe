"""What the renderer promises beyond the golden files: digest, defaults, caps and refusals."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from render_aggregates import clone, http_site, listener, load_balancer, member, pool, spec

from lbaas.render import (
    HAPROXY_CFG,
    RenderError,
    RenderOptions,
    bundle_digest,
    render_bundle,
    render_haproxy_config,
)

OPTIONS = RenderOptions()


def _lines(lb: dict[str, Any], options: RenderOptions = OPTIONS) -> list[str]:
    return [line.strip() for line in render_haproxy_config(spec(lb), options).splitlines()]


def test_bundle_carries_the_config_and_a_documented_digest() -> None:
    bundle = render_bundle(spec(http_site()), OPTIONS)
    assert list(bundle.files) == [HAPROXY_CFG]
    content = bundle.files[HAPROXY_CFG]
    expected = hashlib.sha256(b"haproxy.cfg\0" + content.encode() + b"\0").hexdigest()
    assert bundle.digest == expected == bundle_digest({HAPROXY_CFG: content})


def test_digest_is_stable_and_follows_every_change() -> None:
    first = render_bundle(spec(http_site()), OPTIONS).digest
    assert render_bundle(spec(http_site()), OPTIONS).digest == first
    changed = http_site()
    changed["pools"][0]["members"][1]["weight"] = 0
    assert render_bundle(spec(changed), OPTIONS).digest != first
    assert bundle_digest({"a": "b", "c": ""}) != bundle_digest({"a": "bc"})


def test_connection_limit_defaults_and_is_capped_by_the_process_limit() -> None:
    lb = http_site()
    small = RenderOptions(default_connection_limit=300, max_total_conn=4000)
    assert "maxconn 300" in _lines(lb, small)
    assert "maxconn 4000" in _lines(lb, small)  # global
    lb["listeners"][0]["connection_limit"] = 250000
    assert _lines(lb, small).count("maxconn 4000") == 2


def test_missing_listener_timeouts_fall_back_to_options() -> None:
    lb = http_site()
    lb["listeners"][0].update(timeout_client_data=None, timeout_member_connect=None,
                              timeout_member_data=None, timeout_tcp_inspect=None)
    opts = RenderOptions(timeout_client_data=111, timeout_member_connect=222,
                         timeout_member_data=333, timeout_tcp_inspect=444, tunnel_timeout_ms=555)
    lines = _lines(lb, opts)
    for expected in ("timeout client 111ms", "timeout connect 222ms", "timeout server 333ms",
                     "tcp-request inspect-delay 444ms", "timeout tunnel 555ms"):
        assert expected in lines


def test_false_and_ssl_headers_add_nothing_to_http_listeners() -> None:
    lb = http_site()
    lb["listeners"][0]["insert_headers"] = {"X-Forwarded-For": "false", "X-Real-IP": "False",
                                            "X-SSL-Client-DN": "true"}
    plain = _lines(http_site())
    assert _lines(lb) == plain


def test_json_columns_given_as_text_are_decoded() -> None:
    lb = http_site()
    lb["listeners"][0].update(insert_headers='{"X-Real-IP": "true"}',
                              allowed_cidrs='["192.0.2.0/24"]')
    lines = _lines(lb)
    assert "http-request set-header X-Real-IP %[src]" in lines
    assert "acl lbaas-allowed-cidrs src 192.0.2.0/24" in lines
    assert "tcp-request connection reject if !lbaas-allowed-cidrs" in lines


def test_unused_pools_are_rendered_so_their_members_are_checked() -> None:
    p = pool(1, members=[member(1, 1, "10.0.1.11")])
    lines = _lines(load_balancer(pools=[p], vip_address=None))
    assert f"backend {p['id']}" in lines


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda lb: lb.update(id="lb-1"), "load_balancer id"),
    (lambda lb: lb["listeners"][0].update(protocol_port=True), "protocol_port"),
    (lambda lb: lb["listeners"][0].update(protocol_port=70000), "protocol_port"),
    (lambda lb: lb["listeners"][0].update(protocol="QUIC"), "listener protocol"),
    (lambda lb: lb["pools"][0].update(lb_algorithm="RANDOM"), "lb_algorithm"),
    (lambda lb: lb["pools"][0]["members"][0].update(weight=257), "member weight"),
    (lambda lb: lb["pools"][0]["members"][0].update(address="fe80::1%eth0"), "member address"),
    (lambda lb: lb["pools"][0]["members"][0].update(admin_state_up="yes"), "admin_state_up"),
    (lambda lb: lb["pools"][0].update(session_persistence={"type": "APP_COOKIE"}),
     "cookie_name"),
    (lambda lb: lb["pools"][0].update(
        session_persistence={"type": "APP_COOKIE", "cookie_name": "a=b"}), "cookie_name"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(expected_codes="2xx"), "expected_codes"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(expected_codes="٢٠٠"), "expected_codes"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(url_path="//evil.example/"), "url_path"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(url_path="/a b"), "url_path"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(domain_name="-bad.example"),
     "domain_name"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(http_version=2.0), "http_version"),
    (lambda lb: lb["pools"][0]["healthmonitor"].update(type="UDP-CONNECT"), "healthmonitor"),
    (lambda lb: lb.update(vip_address=None), "vip_address"),
    (lambda lb: lb["listeners"][0].update(allowed_cidrs="10.0.0.0/8"), "allowed_cidrs"),
    (lambda lb: lb["listeners"][0].update(allowed_cidrs=["fe80::%eth0/64"]), "allowed_cidrs"),
    (lambda lb: lb["listeners"][0].update(insert_headers={"X-Evil": "true"}), "insert_headers"),
])
def test_unsafe_or_unknown_values_are_refused(mutate: Any, message: str) -> None:
    lb = clone(http_site())
    mutate(lb)
    with pytest.raises(RenderError, match=message):
        render_haproxy_config(spec(lb), OPTIONS)


def test_tcp_listener_ignores_http_only_features() -> None:
    p = pool(1, "TCP", members=[member(1, 1, "10.0.1.11")],
             session_persistence={"type": "HTTP_COOKIE"})
    lb = load_balancer(listeners=[listener(1, "TCP", 22, default_pool_id=p["id"],
                                           insert_headers={"X-Real-IP": "true"})], pools=[p])
    text = render_haproxy_config(spec(lb), OPTIONS)
    assert "set-header" not in text and "cookie SRV" not in text
    assert "# HTTP_COOKIE persistence needs an HTTP pool: not rendered" in text
