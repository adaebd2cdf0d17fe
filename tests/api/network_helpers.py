"""Shared helpers for the Neutron-subset tests: callers, error bodies, object factories."""

from __future__ import annotations

from typing import Any

from lbaas.api.policy import RequestContext

NET = "/networking/v2.0"
NETWORKS = f"{NET}/networks"
SUBNETS = f"{NET}/subnets"
PORTS = f"{NET}/ports"
LBS = "/v2/lbaas/loadbalancers"
POOLS = "/v2/lbaas/pools"


class StaticAuth:
    """Authenticates every request as one fixed, non-admin caller."""

    def __init__(self, project_id: str, roles: tuple[str, ...] = ("member",)) -> None:
        self.ctx = RequestContext(project_id=project_id, roles=frozenset(roles))

    async def authenticate(self, req: Any) -> RequestContext:
        return self.ctx


class Callers:
    """Switches who the test's requests come from: a project with roles, or back to admin."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.original = api.service.app.authenticator

    def project(self, project_id: str, *roles: str) -> None:
        self.api.service.app.authenticator = StaticAuth(project_id, roles or ("member",))

    def admin(self) -> None:
        self.api.service.app.authenticator = self.original


def neutron_error(body: Any) -> tuple[str, str]:
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    return err["type"], err["message"]


def fault(body: Any) -> str:
    """An Octavia error body's faultstring."""
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
    return str(body["faultstring"])


def make_network(api: Any, name: str, **extra: Any) -> dict[str, Any]:
    code, body = api.post(NETWORKS, {"network": {"name": name, **extra}})
    assert code == 201, body
    return dict(body["network"])


def make_subnet(api: Any, network_id: str, cidr: str, **extra: Any) -> dict[str, Any]:
    version = 6 if ":" in cidr else 4
    code, body = api.post(SUBNETS, {"subnet": {"network_id": network_id, "cidr": cidr,
                                               "ip_version": version, **extra}})
    assert code == 201, body
    return dict(body["subnet"])


def make_port(api: Any, network_id: str, **extra: Any) -> dict[str, Any]:
    code, body = api.post(PORTS, {"port": {"network_id": network_id, **extra}})
    assert code == 201, body
    return dict(body["port"])


def get(api: Any, path: str) -> dict[str, Any]:
    code, body = api.get(path)
    assert code == 200, body
    return dict(body)


def seeded_cidr(api: Any, subnet_name: str) -> str:
    """A seeded subnet's CIDR as the API shows it (the defaults change; never hard-code them)."""
    return str(get(api, f"{SUBNETS}/{api.subnet_id(subnet_name)}")["subnet"]["cidr"])
