"""The Neutron-compatible subset clients need, under ``/networking``: networks, subnets, ports,
their tags, and (in ``resources/floatingips.py``) floating IPs.

The load-balancer API already answers ``GET /`` with Octavia's version document, so the network
API has its own root (``/networking``) with a Neutron version document; clouds.yaml points the
``network`` endpoint there and keystoneauth discovers ``/networking/v2.0/`` from it. Bodies,
filters and errors follow Neutron (``{"NeutronError": {...}}``), not Octavia's WSME shapes. Who
may see, change and use what is decided in ``access`` (with ``store.network_scope``), the one
place the VIP and member code asks too.
"""

from __future__ import annotations

from lbaas.api.http import Router
from lbaas.api.resources.networking import (
    discovery,
    listing,
    networks,
    ports,
    quotas,
    subnets,
    tags,
)
from lbaas.api.resources.networking.listing import API, PREFIX

__all__ = ["API", "PREFIX", "register"]


def register(router: Router) -> None:
    router.add("GET", PREFIX, discovery.versions)
    router.add("GET", API, discovery.v2_index)
    router.add("GET", API + "/extensions", discovery.extensions)
    router.add("GET", API + "/extensions/{alias}", discovery.extension)
    for kind, create, change, remove in (
            (networks.NETWORK, networks.create_network, networks.update_network,
             networks.delete_network),
            (subnets.SUBNET, subnets.create_subnet, subnets.update_subnet,
             subnets.delete_subnet),
            (ports.PORT, ports.create_port, ports.update_port, ports.delete_port)):
        base = f"{API}/{kind.plural}"
        router.add("GET", base, listing.list_handler(kind))
        router.add("GET", base + "/{id}", listing.show_handler(kind))
        router.add("POST", base, create)
        router.add("PUT", base + "/{id}", change)
        router.add("DELETE", base + "/{id}", remove)
        tags.register(router, kind)
    quotas.register(router)
    from lbaas.api.resources import floatingips  # it builds on this package's helpers

    floatingips.register(router)
