"""Deterministic kernel object names for the local drivers.

Every name is a pure function of ids, so a retry (or a restarted controller) finds what an
earlier attempt made without any saved state. Interface names fit Linux's 15-character limit.
"""

from __future__ import annotations

import hashlib
import ipaddress

BRIDGE_PREFIX = "lbr"  # host bridge per managed network
AMP_NETNS_PREFIX = "amp-"  # amphora: the agent and the management leg (the compute_id)
AMP_DATA_NETNS_PREFIX = "ampd-"  # amphora: HAProxy, keepalived, nftables, VIP and member legs
HOST_LEG_PREFIX = "lv"  # host side of an amphora's veth leg
BACKEND_NETNS_PREFIX = "lbbe-"  # demo backend namespace
BACKEND_LEG_PREFIX = "lbb"  # host side of a demo backend's veth

# Leg names inside the amphora's namespaces (Octavia: eth0 management, eth1 VIP; the
# management leg is in ``amp-``, the VIP and member legs in ``ampd-``).
MGMT_LEG = "eth0"
VIP_LEG = "eth1"
MEMBER_LEG_PREFIX = "mem"
BACKEND_LEG = "eth0"

IFNAMSIZ = 15


def _hex(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def bridge_name(network_id: str) -> str:
    """``lbr`` + 8 hex of the network id's hash, e.g. ``lbr1a2b3c4d``."""
    return BRIDGE_PREFIX + _hex(f"network:{network_id}", 8)


def bridge_mac(network_id: str) -> str:
    """A fixed, locally administered MAC for the bridge (see LocalNetwork.ensure_subnet)."""
    digest = _hex(f"mac:{network_id}", 10)
    return "02:" + ":".join(digest[i:i + 2] for i in range(0, 10, 2))


def amphora_netns(amphora_id: str) -> str:
    """``amp-`` + the first 12 hex digits of the amphora id (the compute_id)."""
    return AMP_NETNS_PREFIX + amphora_id.replace("-", "").lower()[:12]


def amphora_data_netns(amphora_id: str) -> str:
    """``ampd-`` + the same 12 hex digits: upstream's ``amphora-haproxy`` namespace."""
    return data_netns_of(amphora_netns(amphora_id))


def data_netns_of(compute_id: str) -> str:
    """The data namespace of the amphora whose management namespace is ``compute_id``."""
    return AMP_DATA_NETNS_PREFIX + compute_id.removeprefix(AMP_NETNS_PREFIX)


def member_leg(subnet_id: str) -> str:
    """Leg name inside the amphora for a member subnet: ``mem`` + 8 hex."""
    return MEMBER_LEG_PREFIX + _hex(f"subnet:{subnet_id}", 8)


def host_leg(netns: str, leg: str) -> str:
    """Host-side veth peer of ``leg`` in ``netns``: ``lv`` + 12 hex (14 characters)."""
    return HOST_LEG_PREFIX + _hex(f"leg:{netns}/{leg}", 12)


def _address_hex(address: str) -> str:
    ip = ipaddress.ip_address(address)
    width = 8 if ip.version == 4 else 32
    return format(int(ip), f"0{width}x")


def backend_netns(address: str) -> str:
    """``lbbe-`` + the address in hex, e.g. ``lbbe-0afa0105`` for 10.250.1.5."""
    return BACKEND_NETNS_PREFIX + _address_hex(address)


def backend_host_leg(address: str) -> str:
    """Host-side veth of a demo backend: ``lbb`` + 8 hex (the IPv4 address, else a hash)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return BACKEND_LEG_PREFIX + _address_hex(address)
    return BACKEND_LEG_PREFIX + _hex(f"backend:{ip}", 12)
