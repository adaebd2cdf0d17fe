"""clouds.yaml for a cloud named ``lbaas`` pointing the CLI and openstacksdk at this server.

Authentication is a password against an Identity v3: the real Keystone with ``auth_strategy =
keystone``, else this server's own ``/identity/v3`` (noauth: any user and password get a token
whose catalog names this server), so project lookups (``openstack loadbalancer quota show
admin``) and openstacksdk's ``get_project_id`` work in both modes. The service endpoints are
also given as overrides: Keystone's catalog need not list them. The load-balancer endpoint is
the server root (Octavia's version document); the network endpoint is ``/networking``, which
serves a Neutron version document, so keystoneauth's discovery lands on ``/networking/v2.0/``
rather than on Octavia's versions.
"""

from __future__ import annotations

from typing import Any

import yaml

from lbaas.settings import Settings

CLOUD = "lbaas"
NETWORK_PREFIX = "/networking"
# python-barbicanclient asks keystoneauth for service type key-manager, version v1: the override
# names the versioned root, which answers the version document it discovers from.
KEY_MANAGER_PREFIX = "/key-manager/v1"
IDENTITY_PREFIX = "/identity/v3"  # noauth: this server's own (api/resources/identity.py)


def base_url(settings: Settings) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"


def cloud_config(settings: Settings, *, username: str = "admin", password: str = "admin",
                 project_name: str | None = "admin", system_scope: bool = False) \
        -> dict[str, Any]:
    """One cloud entry; ``project_name`` None with ``system_scope`` asks a system token."""
    url = base_url(settings)
    if settings.api.auth_strategy == "keystone":
        ks = settings.keystone
        auth_url = ks.auth_url
        user_domain, project_domain = ks.user_domain_name, ks.project_domain_name
    else:
        auth_url, user_domain, project_domain = url + IDENTITY_PREFIX, "Default", "Default"
    auth: dict[str, Any] = {"auth_url": auth_url, "username": username, "password": password,
                            "user_domain_name": user_domain}
    if system_scope:
        auth["system_scope"] = "all"
    elif project_name is not None:
        auth.update(project_name=project_name, project_domain_name=project_domain)
    return {
        "region_name": "RegionOne", "auth_type": "password", "auth": auth,
        "identity_api_version": 3,
        "load_balancer_endpoint_override": url,
        "network_endpoint_override": url + NETWORK_PREFIX,
        "key_manager_endpoint_override": url + KEY_MANAGER_PREFIX,
    }


def clouds_yaml(settings: Settings) -> str:
    return yaml.safe_dump({"clouds": {CLOUD: cloud_config(settings)}}, sort_keys=False,
                          default_flow_style=False)
