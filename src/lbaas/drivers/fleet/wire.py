"""The controller <-> host-agent contract: paths and the JSON form of the driver dataclasses.

The host-agent runs the local compute and network drivers on its host; these calls carry their
arguments (``AmphoraSpec``, ``SubnetPlug``...) as JSON. Both sides import this module.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from lbaas.drivers.base import AgentCredentials, AmphoraSpec, ComputeInfo, SubnetInfo, SubnetPlug

HOST_AGENT_PORT = 9444
HOST_PATH = "/v1/host"  # GET: name, zone, capacity, amphorae, segments
AMPHORAE_PATH = "/v1/amphorae"  # POST spec; DELETE /v1/amphorae/<ns>
FLOOD_PATH = "/v1/flood"  # PUT {vni: [underlay addresses]}
BACKENDS_PATH = "/v1/backends"  # lab only: demo backends on this host's segments
CLIENT_CN = "controller"  # the only client certificate a host-agent answers
# Registration: a host-agent announces itself to the controller's registration listener
REGISTRATION_PORT = 9445
REGISTER_PATH = "/v1/register"  # POST {name, zone, capacity, address, port}
HOST_CN_PREFIX = "host:"  # a host-agent's certificate: common name host:<name>
REGISTRATION_CN = "controller"  # the registration listener's server certificate


def subnet_from(data: dict[str, Any]) -> SubnetInfo:
    return SubnetInfo(network_id=str(data["network_id"]), subnet_id=str(data["subnet_id"]),
                      cidr=str(data["cidr"]), gateway_ip=data.get("gateway_ip"),
                      host_access=bool(data.get("host_access", False)),
                      management=bool(data.get("management", False)))


def plug_from(data: dict[str, Any] | None) -> SubnetPlug | None:
    if data is None:
        return None
    return SubnetPlug(subnet=subnet_from(data["subnet"]), address=str(data["address"]))


def spec_to_json(spec: AmphoraSpec) -> dict[str, Any]:
    return asdict(spec)


def spec_from(data: dict[str, Any]) -> AmphoraSpec:
    creds = data.get("credentials")
    return AmphoraSpec(
        amphora_id=str(data["amphora_id"]), load_balancer_id=str(data["load_balancer_id"]),
        role=str(data["role"]), vrrp_priority=data.get("vrrp_priority"),
        vip_address=str(data["vip_address"]), vip_subnet_id=str(data["vip_subnet_id"]),
        vip_network_id=str(data["vip_network_id"]), mgmt=plug_from(data.get("mgmt")),
        vip=plug_from(data.get("vip")), zone=data.get("zone"),
        credentials=None if creds is None else AgentCredentials(
            ca_pem=creds["ca_pem"], cert_pem=creds["cert_pem"], key_pem=creds["key_pem"],
            heartbeat_key=creds.get("heartbeat_key", ""),
            health_targets=tuple(creds.get("health_targets", ())),
            heartbeat_interval=float(creds.get("heartbeat_interval", 1.0))))


def compute_from(data: dict[str, Any]) -> ComputeInfo:
    return ComputeInfo(compute_id=str(data["compute_id"]),
                       lb_network_ip=str(data["lb_network_ip"]),
                       cached_zone=data.get("cached_zone"))


def split_compute_id(compute_id: str) -> tuple[str, str]:
    """``host/namespace`` -> (host, namespace); a bare namespace has host ""."""
    host, _, ns = compute_id.rpartition("/")
    return host, ns
