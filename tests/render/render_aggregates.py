"""Aggregates as nested dicts, converted once with ``spec`` into what render takes
(``lbaas.domain.spec.LoadBalancerSpec``, as ``controller.aggregate.load_aggregate`` builds it).

Every dict carries all the columns of its table in store/tables.py (minus the statuses and
timestamps), so a renamed column breaks these tests rather than hiding.
Ids are fixed, readable UUIDs so the golden files stay stable and reviewable.
"""

from __future__ import annotations

import copy
from typing import Any

from lbaas.domain.spec import LoadBalancerSpec

PROJECT = "5a1e0000-0000-4000-8000-00000000000a"
LB_ID = "0b000000-0000-4000-8000-000000000001"
VIP_SUBNET = "5b000000-0000-4000-8000-000000000001"
MEMBER_SUBNET = "5b000000-0000-4000-8000-000000000002"


def spec(lb: dict[str, Any]) -> LoadBalancerSpec:
    """What render takes, from a nested dict as the helpers here build."""
    return LoadBalancerSpec.from_mapping(lb)


def uid(kind: str, n: int) -> str:
    prefix = {"listener": "11", "pool": "90", "member": "ee", "hm": "4e", "policy": "70",
              "rule": "71"}[kind]
    return f"{prefix}000000-0000-4000-8000-{n:012d}"


def load_balancer(**over: Any) -> dict[str, Any]:
    lb = {
        "id": LB_ID, "project_id": PROJECT, "name": "web", "description": "",
        "admin_state_up": True, "topology": "SINGLE", "provider": "amphora", "flavor_id": None,
        "availability_zone": None, "vip_address": "203.0.113.10",
        "vip_port_id": "9f000000-0000-4000-8000-000000000001", "vip_subnet_id": VIP_SUBNET,
        "vip_network_id": "6e000000-0000-4000-8000-000000000001", "vip_qos_policy_id": None,
        "vip_vnic_type": "normal", "vip_sg_ids": None, "additional_vips": [],
        "listeners": [], "pools": [],
    }
    lb.update(over)
    return lb


def listener(n: int, protocol: str = "HTTP", port: int = 80, **over: Any) -> dict[str, Any]:
    li = {
        "id": uid("listener", n), "project_id": PROJECT, "load_balancer_id": LB_ID,
        "name": f"listener-{n}", "description": "", "admin_state_up": True,
        "protocol": protocol, "protocol_port": port, "connection_limit": -1,
        "default_pool_id": None, "default_tls_container_ref": None, "sni_container_refs": [],
        "client_authentication": "NONE", "client_ca_tls_container_ref": None,
        "client_crl_container_ref": None, "insert_headers": {},
        "timeout_client_data": 50000, "timeout_member_connect": 5000,
        "timeout_member_data": 50000, "timeout_tcp_inspect": 0, "allowed_cidrs": None,
        "tls_ciphers": None, "tls_versions": None, "alpn_protocols": None,
        "hsts_max_age": None, "hsts_include_subdomains": False, "hsts_preload": False,
        "l7policies": [],
    }
    li.update(over)
    return li


def pool(n: int, protocol: str = "HTTP", algorithm: str = "ROUND_ROBIN",
         **over: Any) -> dict[str, Any]:
    p = {
        "id": uid("pool", n), "project_id": PROJECT, "load_balancer_id": LB_ID,
        "name": f"pool-{n}", "description": "", "admin_state_up": True, "protocol": protocol,
        "lb_algorithm": algorithm, "session_persistence": None, "tls_enabled": False,
        "tls_container_ref": None, "ca_tls_container_ref": None, "crl_container_ref": None,
        "tls_ciphers": None, "tls_versions": None, "alpn_protocols": None,
        "members": [], "healthmonitor": None,
    }
    p.update(over)
    return p


def member(n: int, pool_n: int, address: str, port: int = 8080, **over: Any) -> dict[str, Any]:
    m = {
        "id": uid("member", n), "project_id": PROJECT, "pool_id": uid("pool", pool_n),
        "name": f"member-{n}", "admin_state_up": True, "address": address,
        "protocol_port": port, "weight": 1, "backup": False, "subnet_id": MEMBER_SUBNET,
        "monitor_address": None, "monitor_port": None, "vnic_type": "normal",
    }
    m.update(over)
    return m


def monitor(n: int, pool_n: int, kind: str = "HTTP", **over: Any) -> dict[str, Any]:
    http = kind in ("HTTP", "HTTPS")
    hm = {
        "id": uid("hm", n), "project_id": PROJECT, "pool_id": uid("pool", pool_n),
        "name": f"hm-{n}", "admin_state_up": True, "type": kind, "delay": 5, "timeout": 3,
        "max_retries": 2, "max_retries_down": 3,
        "http_method": "GET" if http else None, "url_path": "/" if http else None,
        "expected_codes": "200" if http else None, "http_version": None, "domain_name": None,
    }
    hm.update(over)
    return hm


def l7policy(n: int, listener_n: int, position: int = 1, **over: Any) -> dict[str, Any]:
    pol = {
        "id": uid("policy", n), "project_id": PROJECT, "listener_id": uid("listener", listener_n),
        "name": f"policy-{n}", "description": "", "admin_state_up": True, "action": "REJECT",
        "redirect_pool_id": None, "redirect_url": None, "redirect_prefix": None,
        "redirect_http_code": None, "position": position,
        "rules": [{
            "id": uid("rule", n), "project_id": PROJECT, "l7policy_id": uid("policy", n),
            "admin_state_up": True, "type": "PATH", "compare_type": "STARTS_WITH", "key": None,
            "value": "/admin", "invert": False,
        }],
    }
    pol.update(over)
    return pol


def http_site() -> dict[str, Any]:
    """An HTTP listener in front of two members with an HTTP health monitor."""
    p = pool(1, members=[member(1, 1, "10.0.1.11"), member(2, 1, "10.0.1.12")],
             healthmonitor=monitor(1, 1, url_path="/healthz", http_version=1.1,
                                   domain_name="app.example.com", expected_codes="200-204"))
    return load_balancer(listeners=[listener(1, default_pool_id=p["id"])], pools=[p])


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
