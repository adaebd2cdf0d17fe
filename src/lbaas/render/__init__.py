"""Pure rendering of an amphora's configuration bundle from a load balancer aggregate
(``lbaas.domain.spec.LoadBalancerSpec``).

Imports only ``lbaas.domain`` and the standard library; no I/O. See docs/decisions/0004-render.md.
"""

from lbaas.render.bundle import HAPROXY_CFG, RenderedBundle, bundle_digest, render_bundle
from lbaas.render.escaping import RenderError
from lbaas.render.haproxy import render_haproxy_config
from lbaas.render.keepalived import KEEPALIVED_CONF, AmphoraView, render_keepalived_config
from lbaas.render.options import RenderOptions

__all__ = [
    "HAPROXY_CFG", "KEEPALIVED_CONF", "AmphoraView", "RenderError", "RenderOptions",
    "RenderedBundle", "bundle_digest",
    "render_bundle", "render_haproxy_config", "render_keepalived_config",
]
