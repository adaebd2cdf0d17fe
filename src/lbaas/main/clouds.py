"""clouds.yaml for a cloud named ``lbaas`` pointing the CLI and openstacksdk at this server.

Both endpoints are overridden: without a catalog (``auth_type: none``) every service would
otherwise fall back to one URL. The load-balancer endpoint is the server root (Octavia's version
document); the network endpoint is ``/networking``, which serves a Neutron version document, so
keystoneauth's discovery lands on ``/networking/v2.0/`` rather than on Octavia's versions.
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


def base_url(settings: Settings) -> str:
    host = settings.api.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"


def cloud_config(settings: Settings) -> dict[str, Any]:
    url = base_url(settings)
    cloud: dict[str, Any] = {"region_name": "RegionOne"}
    if settings.api.auth_strategy == "keystone":
        ks = settings.keystone
        cloud["auth_type"] = "password"
        cloud["auth"] = {
            "auth_url": ks.auth_url, "username": "admin", "password": "admin",
            "project_name": "admin", "user_domain_name": ks.user_domain_name,
            "project_domain_name": ks.project_domain_name,
        }
    else:
        cloud["auth_type"] = "none"
        # barbicanclient's OSC plugin ignores *_endpoint_override and asks the session, whose
        # noauth plugin answers with this fixed endpoint (the others keep their overrides).
        # With keystone, the catalog must list a key-manager endpoint.
        cloud["auth"] = {"endpoint": url + KEY_MANAGER_PREFIX}
    cloud["load_balancer_endpoint_override"] = url
    cloud["network_endpoint_override"] = url + NETWORK_PREFIX
    cloud["key_manager_endpoint_override"] = url + KEY_MANAGER_PREFIX
    return {"clouds": {CLOUD: cloud}}


def clouds_yaml(settings: Settings) -> str:
    return yaml.safe_dump(cloud_config(settings), sort_keys=False, default_flow_style=False)
