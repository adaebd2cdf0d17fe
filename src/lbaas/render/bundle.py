"""The bundle the controller pushes to an amphora: rendered files plus a content digest.

Key choice: the digest covers file paths and contents only (no timestamps, no generation
numbers), so the agent's reported digest equals the controller's iff the files are identical
and an unchanged load balancer never causes a push or a reload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from lbaas.domain.spec import LoadBalancerSpec
from lbaas.render.haproxy import render_haproxy_config
from lbaas.render.keepalived import AmphoraView, render_vrrp_files
from lbaas.render.nftables import render_nftables
from lbaas.render.options import RenderOptions
from lbaas.render.tls import certificate_files

HAPROXY_CFG = "haproxy.cfg"


@dataclass(frozen=True)
class RenderedBundle:
    files: dict[str, str]  # relative path -> content
    digest: str  # bundle_digest(files)


def bundle_digest(files: Mapping[str, str]) -> str:
    """sha256 hex over, for each path in sorted order: path, NUL, content (UTF-8), NUL.

    Unambiguous because neither paths nor rendered contents may contain NUL.
    """
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return h.hexdigest()


def render_bundle(lb: LoadBalancerSpec, options: RenderOptions,
                  amphora: AmphoraView | None = None,
                  certificates: Mapping[str, str] | None = None) -> RenderedBundle:
    """The files for one amphora: haproxy.cfg, plus keepalived.conf for ACTIVE_STANDBY ones
    (and handover.nft for a BACKUP taking a drained MASTER's VIP over),
    plus ``certs/<stem>.pem`` for TLS (``certificates``: PEM texts by stem, see render.tls).

    ``amphora`` None (SINGLE topology) gives the same bundle as before ACTIVE_STANDBY existed.
    """
    files = {HAPROXY_CFG: render_haproxy_config(lb, options, certificates)}
    files.update(render_nftables(lb))  # UDP/SCTP listeners: nftables.conf + udp-members.json
    if certificates is not None:
        files.update(certificate_files(lb, certificates))
    if amphora is not None:
        files.update(render_vrrp_files(lb, amphora))
    return RenderedBundle(files=files, digest=bundle_digest(files))
