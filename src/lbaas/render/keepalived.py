"""Render keepalived.conf for one amphora of an ACTIVE_STANDBY load balancer.

Pure: equal inputs give byte-equal files. Key choices:
  - VRRPv3 with ``advert_int 0.1``: the standby takes the VIP about 0.35 s after the master
    stops advertising (3 adverts plus skew). VRRPv3 has no authentication, so none is emitted.
  - Unicast adverts to the peer's VRRP address on the VIP subnet (no multicast on the bridge;
    load balancers sharing the bridge never see each other's adverts).
  - Both amphorae start in ``state BACKUP`` with ``nopreempt``: priorities (100/90) decide the
    first election, and a repaired amphora never takes the VIP back from one that serves.
    The one exception is a drain (``AmphoraView.preempt``): the BACKUP of a MASTER being moved
    preempts with priority 254, taking the VIP while the MASTER still holds it.
  - Every amphora of a pair also holds the IPv4 VIPs on ``lo`` (scope host), with ``arp_ignore 1``
    and ``arp_announce 2`` on the VRRP leg (the ``notify`` script, run from the first BACKUP
    state on): a packet that still reaches a MASTER's MAC after it stepped down (a client that
    has not yet had the new MASTER's gratuitous ARP) is served by its HAProxy, not dropped,
    while only the amphora holding the VIP on the leg answers ARP for it (and no ARP request
    leaves with the VIP as sender). A drain retires the old MASTER only after a grace.
  - The track script asks the kernel whether the HAProxy daemon lives (its pid file in
    ``$LBAAS_RUN_DIR``, which the agent puts in keepalived's environment); a failure puts the
    instance in FAULT and the VIP moves. No script file, so no versioned path goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lbaas.domain import constants as c
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.render import escaping as e
from lbaas.render.escaping import RenderError

KEEPALIVED_CONF = "keepalived.conf"
HANDOVER_NFT = "handover.nft"
HANDOVER_TABLE = "lbaas_handover"
ADVERT_INT = "0.1"
VRRP_ROLES = (c.ROLE_MASTER, c.ROLE_BACKUP)
# The HAProxy daemon named by the pid file is alive: its /proc/<pid>/status shows a state other
# than Z or X (a zombie ``kill -0`` would count as alive). Not /proc/<pid>/exe: resolving it for
# HAProxy (nobody) needs CAP_SYS_PTRACE, which keepalived no longer has (agent/netns.py).
# keepalived runs it with /bin/sh, no file needed.
CHECK_SCRIPT = ("/bin/sh -c 'grep -qs \\\"^State:.[^ZX]\\\" "
                "\\\"/proc/$(cat \\\"$LBAAS_RUN_DIR/haproxy.pid\\\")/status\\\"'")
_INTERFACE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class AmphoraView:
    """What one amphora of an ACTIVE_STANDBY pair needs beyond the load balancer itself."""

    role: str  # MASTER or BACKUP
    priority: int
    vrrp_ip: str  # this amphora's own address on the VIP subnet
    peer_ips: tuple[str, ...]  # the other amphorae's vrrp_ip
    vrrp_interface: str
    vrrp_id: int = 1
    # takes the VIP from a lower-priority MASTER (a drain hands a MASTER's VIP over this way)
    preempt: bool = False


def _local_vips_script(vips: list[Any], leg: str) -> str:
    """The notify command: the VIPs on ``lo``, ARP on the leg only for addresses on the leg."""
    conf = f"/proc/sys/net/ipv4/conf/{leg}"
    steps = [f"ip address replace {v}/32 dev lo scope host" for v in vips if v.version == 4]
    steps += [f"echo 1 > {conf}/arp_ignore", f"echo 2 > {conf}/arp_announce"]
    return f"/bin/sh -c '{'; '.join(steps)}'"


def render_vrrp_files(lb: LoadBalancerSpec, amp: AmphoraView) -> dict[str, str]:
    """keepalived.conf, plus handover.nft for a BACKUP that takes a MASTER's VIP over."""
    files = {KEEPALIVED_CONF: render_keepalived_config(lb, amp)}
    if amp.preempt:
        handover = render_handover_nft(lb, amp)
        if handover is not None:
            files[HANDOVER_NFT] = handover
    return files


def render_handover_nft(lb: LoadBalancerSpec, amp: AmphoraView) -> str | None:
    """The nftables rules of a preempting BACKUP: TCP to an IPv4 VIP of a connection it did not
    see start goes to the MASTER it takes over from (its only peer); None if there is no single
    IPv4 peer or no IPv4 VIP."""
    leg = interface(amp.vrrp_interface)
    peers = {e.ip("peer vrrp_ip", p) for p in amp.peer_ips if p != amp.vrrp_ip}
    vips = sorted({v for v in _vips(lb) if v.version == 4}, key=int)
    if len(peers) != 1 or not vips:
        return None
    (peer,) = peers
    if peer.version != 4:
        return None
    daddr = vips[0] if len(vips) == 1 else "{ " + ", ".join(str(v) for v in vips) + " }"
    flow = "ip saddr . tcp sport"
    return "\n".join([
        f"table netdev {HANDOVER_TABLE} {{}}",
        f"delete table netdev {HANDOVER_TABLE}",
        f"table netdev {HANDOVER_TABLE} {{",
        "    set served {",  # the connections this amphora saw start
        "        type ipv4_addr . inet_service",
        "        flags dynamic, timeout",
        "        timeout 10m",
        "    }",
        "    chain ingress {",
        f'        type filter hook ingress device "{leg}" priority 0; policy accept;',
        f"        ip daddr {daddr} tcp flags & (syn | ack) == syn update @served {{ {flow} }} "
        "accept",
        f"        ip daddr {daddr} {flow} @served update @served {{ {flow} }} accept",
        f'        ip daddr {daddr} meta l4proto tcp counter fwd ip to {peer} device "{leg}"',
        "    }",
        "}",
    ]) + "\n"


def _vips(lb: LoadBalancerSpec) -> list[Any]:
    vips = [e.ip("vip_address", lb.vip_address)]
    return vips + [e.ip("additional_vips ip_address", v.get("ip_address"))
                   for v in e.objects("additional_vips", lb.additional_vips)]


def interface(value: Any) -> str:
    """A Linux interface name (at most 15 characters, no spaces or quotes)."""
    if (not isinstance(value, str) or not 0 < len(value) <= 15
            or not set(value) <= _INTERFACE_CHARS or value in (".", "..")):
        raise RenderError(f"vrrp_interface: {value!r} is not an interface name")
    return value


def render_keepalived_config(lb: LoadBalancerSpec, amp: AmphoraView) -> str:
    """The whole keepalived.conf text for ``amp``; raises ``RenderError`` on any unsafe value."""
    lb_id = e.ident("load_balancer id", lb.id)
    role = e.choice("amphora role", amp.role, VRRP_ROLES)
    priority = e.integer("vrrp_priority", amp.priority, 1, 254)
    vrrp_id = e.integer("vrrp_id", amp.vrrp_id, 1, 255)
    own = e.ip("vrrp_ip", amp.vrrp_ip)
    peers = sorted({e.ip("peer vrrp_ip", p) for p in amp.peer_ips if p != amp.vrrp_ip},
                   key=lambda a: (a.version, int(a)))
    if not peers:
        raise RenderError("peer_ips: an ACTIVE_STANDBY amphora needs its peer's vrrp_ip")
    if any(p.version != own.version for p in peers):
        raise RenderError("peer_ips: peers must have the vrrp_ip's address family")
    vips = _vips(lb)
    leg = interface(amp.vrrp_interface)
    lines = [
        f"# load balancer {lb_id}: amphora role {role}, rendered by lbaas, replaced whole",
        "global_defs {",
        "    vrrp_version 3",
        "    enable_script_security",
        "    script_user root",
        "}",
        "",
        "vrrp_script check_haproxy {",
        f'    script "{CHECK_SCRIPT}"',
        "    interval 1",
        "    timeout 1",
        "    fall 1",
        "    rise 2",
        "}",
        "",
        "vrrp_instance lbaas {",
        "    state BACKUP",
        f"    interface {leg}",
        f"    virtual_router_id {vrrp_id}",
        f"    priority {priority}",
        *(() if amp.preempt else ("    nopreempt",)),
        "    accept",
        f"    advert_int {ADVERT_INT}",
        "    garp_master_refresh 5",
        f"    unicast_src_ip {own}",
        "    unicast_peer {",
        *(f"        {p}" for p in peers),
        "    }",
        "    check_unicast_src",  # adverts only from the peers above, not anyone on the segment
        "    virtual_ipaddress {",
        *(f"        {v}" for v in vips if v.version == own.version),
        "    }",
    ]
    other = [v for v in vips if v.version != own.version]
    if other:  # VRRPv3 adverts carry one address family; the rest move along, unadvertised
        lines += ["    virtual_ipaddress_excluded {", *(f"        {v}" for v in other), "    }"]
    lines += [
        f'    notify "{_local_vips_script(vips, leg)}"',
        "    track_script {",
        "        check_haproxy",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
