"""Validating a port's attributes with Neutron's rules and messages, and who may set which.

Neutron lets anyone create a port on a shared network but keeps the choice of addresses, MAC,
port security, address pairs and network-device owners to the network's owner (and admins);
device owners lbaas gives its own ports (VIPs, amphorae, demo backends) are the admin's too, so
no project can dress a port up as one of them. Security groups do not exist here: only an
empty list is accepted. Address pairs and port security are stored and shown; the ports a user
creates are not plugged anywhere, so nothing enforces them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from lbaas.api.http import ApiRequest
from lbaas.api.resources.networking import access
from lbaas.api.resources.networking.bodies import parse_ip
from lbaas.api.resources.networking.errors import (
    NeutronError,
    bad_request,
    forbidden,
    invalid_attr,
)

SERVICE_OWNERS = frozenset({"Octavia", "compute:amphora", "compute:lbaas-demo-backend"})
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed")
MAX_ADDRESS_PAIRS = 10
MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
INVALID_MACS = ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")


def is_service_owner(device_owner: str | None) -> bool:
    """Ports lbaas made and manages itself (VIPs, amphora legs, router and floating ports)."""
    owner = device_owner or ""
    return owner in SERVICE_OWNERS or owner.startswith("network:")


def check_rights(req: ApiRequest, body: dict[str, Any], network: Any, verb: str) -> None:
    """Neutron's per-attribute port policy (``create_port:mac_address`` ...)."""
    if access.is_admin(req):
        return
    network_owner = access.may_write(req, network.project_id)
    if not network_owner:
        ips = body.get("fixed_ips")
        if isinstance(ips, list) and any(isinstance(i, dict) and "ip_address" in i
                                         for i in ips):
            raise forbidden(f"{verb}_port:fixed_ips:ip_address")
        if verb == "update" and "fixed_ips" in body:
            raise forbidden("update_port:fixed_ips")
        for attr in ("port_security_enabled", "allowed_address_pairs"):
            if attr in body:
                raise forbidden(f"{verb}_port:{attr}")
    if "mac_address" in body and (verb == "update" or not network_owner):
        raise forbidden(f"{verb}_port:mac_address")
    if is_service_owner(body.get("device_owner")):
        raise forbidden(f"{verb}_port:device_owner")


def parse_mac(raw: Any) -> str:
    text = raw.strip().lower() if isinstance(raw, str) else ""
    if not MAC.match(text) or text.replace("-", ":") in INVALID_MACS:
        raise invalid_attr("mac_address", f"'{raw}' is not a valid MAC address")
    digits = re.sub(r"[:-]", "", text)
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_security_groups(raw: Any) -> None:
    if not isinstance(raw, list):
        raise invalid_attr("security_groups", f"'{raw}' is not a list")
    if raw:  # lbaas has no security groups
        raise NeutronError("SecurityGroupNotFound",
                           f"Security group {raw[0]} does not exist", 404)


def parse_address_pairs(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise bad_request("Allowed address pairs must be a list.")
    if len(raw) > MAX_ADDRESS_PAIRS:
        raise NeutronError("AllowedAddressPairExhausted", "Maximum number of allowed address "
                           f"pairs {MAX_ADDRESS_PAIRS} exceeded", 400)
    pairs: list[dict[str, str]] = []
    for pair in raw:
        if not isinstance(pair, dict):
            raise invalid_attr("allowed_address_pairs", f"'{pair}' is not a dictionary")
        extra = sorted(set(pair) - {"ip_address", "mac_address"})
        if "ip_address" not in pair:
            raise NeutronError("AllowedAddressPairsMissingIP",
                               "AllowedAddressPair must contain ip_address", 400)
        if extra:
            raise bad_request("Unrecognized attribute(s) '" + ", ".join(extra) + "'")
        entry = {"ip_address": _pair_address(pair["ip_address"])}
        if "mac_address" in pair:
            entry["mac_address"] = parse_mac(pair["mac_address"])
        if entry in pairs:
            raise NeutronError("DuplicateAddressPairInRequest", "Request contains duplicate "
                               f"address pair: mac_address {entry.get('mac_address')} "
                               f"ip_address {entry['ip_address']}.", 400)
        pairs.append(entry)
    return pairs


def _pair_address(raw: Any) -> str:
    if isinstance(raw, str) and "/" in raw:
        try:
            return str(ipaddress.ip_network(raw))
        except ValueError:
            raise bad_request(f"'{raw}' is not a valid IP subnet") from None
    address = parse_ip("allowed_address_pairs", raw)
    if address.is_multicast:
        raise bad_request(f"'{raw}' is a multicast IP address")
    return str(raw)


def parse_vnic_type(raw: Any) -> str:
    if raw not in VNIC_TYPES:
        raise invalid_attr("binding:vnic_type", f"{raw} is not in valid_values")
    return str(raw)
