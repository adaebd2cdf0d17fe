"""keepalived.conf for ACTIVE_STANDBY amphorae: golden files, the bundle per amphora, refusals.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/render`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from render_aggregates import http_site, spec

from lbaas.render import (
    HAPROXY_CFG,
    KEEPALIVED_CONF,
    AmphoraView,
    RenderError,
    RenderOptions,
    render_bundle,
    render_keepalived_config,
)

GOLDEN = Path(__file__).parent / "golden"
MASTER = AmphoraView(role="MASTER", priority=100, vrrp_ip="203.0.113.21",
                     peer_ips=("203.0.113.22",), vrrp_interface="eth1", vrrp_id=1)
BACKUP = AmphoraView(role="BACKUP", priority=90, vrrp_ip="203.0.113.22",
                     peer_ips=("203.0.113.21",), vrrp_interface="eth1", vrrp_id=1)


def _dual_stack() -> dict[str, Any]:
    lb = http_site()
    lb["additional_vips"] = [{"subnet_id": "5b000000-0000-4000-8000-000000000009",
                              "ip_address": "2001:db8::10"}]
    return lb


SCENARIOS = {
    "keepalived_master": (http_site, MASTER),
    "keepalived_backup": (http_site, BACKUP),
    "keepalived_dual_stack_vip": (_dual_stack, MASTER),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_keepalived_matches_golden_file(name: str) -> None:
    make_lb, amp = SCENARIOS[name]
    text = render_keepalived_config(spec(make_lb()), amp)
    path = GOLDEN / f"{name}.conf"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing {path}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_vrrpv3_without_authentication() -> None:
    text = render_keepalived_config(spec(http_site()), MASTER)
    assert "vrrp_version 3" in text and "advert_int 0.1" in text
    assert "authentication" not in text and "auth_pass" not in text
    assert "nopreempt" in text and "track_script" in text


def test_every_amphora_of_a_pair_holds_the_ipv4_vips_on_lo_without_answering_arp() -> None:
    text = render_keepalived_config(spec(_dual_stack()), BACKUP)
    (notify,) = [line for line in text.splitlines() if line.strip().startswith("notify ")]
    assert "ip address replace 203.0.113.10/32 dev lo scope host" in notify
    assert "2001:db8::10" not in notify
    assert "echo 1 > /proc/sys/net/ipv4/conf/eth1/arp_ignore" in notify
    assert "echo 2 > /proc/sys/net/ipv4/conf/eth1/arp_announce" in notify


def test_a_preempting_backup_forwards_connections_it_did_not_see_start() -> None:
    """Only a BACKUP taking a drained MASTER's VIP over gets handover.nft: TCP to the IPv4 VIP
    of a flow whose SYN it did not see goes, unchanged, to the MASTER (its peer)."""
    lb, options = _dual_stack(), RenderOptions()
    taking = AmphoraView(**{**BACKUP.__dict__, "priority": 254, "preempt": True})
    files = render_bundle(spec(lb), options, taking).files
    assert set(files) == {HAPROXY_CFG, KEEPALIVED_CONF, "handover.nft"}
    rules = files["handover.nft"]
    assert 'hook ingress device "eth1"' in rules
    assert "ip daddr 203.0.113.10 tcp flags & (syn | ack) == syn update @served" in rules
    assert ('ip daddr 203.0.113.10 meta l4proto tcp counter fwd ip to 203.0.113.21 device "eth1"'
            in rules)
    assert "2001:db8::10" not in rules
    assert "nopreempt" not in files[KEEPALIVED_CONF]
    for amp in (MASTER, BACKUP):
        assert "handover.nft" not in render_bundle(spec(lb), options, amp).files


def test_single_bundle_is_unchanged_and_pairs_differ() -> None:
    lb, options = http_site(), RenderOptions()
    single = render_bundle(spec(lb), options)
    assert set(single.files) == {HAPROXY_CFG}
    master = render_bundle(spec(lb), options, MASTER)
    backup = render_bundle(spec(lb), options, BACKUP)
    assert set(master.files) == {HAPROXY_CFG, KEEPALIVED_CONF}
    assert master.files[HAPROXY_CFG] == backup.files[HAPROXY_CFG] == single.files[HAPROXY_CFG]
    assert len({single.digest, master.digest, backup.digest}) == 3
    assert "priority 100" in master.files[KEEPALIVED_CONF]
    assert "priority 90" in backup.files[KEEPALIVED_CONF]


@pytest.mark.parametrize("change", [
    {"role": "STANDALONE"}, {"priority": 0}, {"priority": 255}, {"vrrp_id": 256},
    {"vrrp_ip": "203.0.113.21\n}"}, {"peer_ips": ()}, {"peer_ips": ("203.0.113.21",)},
    {"peer_ips": ("2001:db8::1",)}, {"peer_ips": ("1.2.3.4 }\nvrrp_instance x {",)},
    {"vrrp_interface": "eth1 }"}, {"vrrp_interface": "a" * 16}, {"vrrp_interface": ""},
])
def test_unsafe_values_are_refused(change: dict[str, Any]) -> None:
    amp = AmphoraView(**{**MASTER.__dict__, **change})
    with pytest.raises(RenderError):
        render_keepalived_config(spec(http_site()), amp)


def test_unsafe_vip_is_refused() -> None:
    with pytest.raises(RenderError):
        render_keepalived_config(spec({**http_site(), "vip_address": "203.0.113.10\n}"}), MASTER)
