"""Render a load balancer the API made, as the controller does, and check it with the real tools.

``render_from_api`` reads the rows with ``load_aggregate``, loads the certificates they name
through the controller's ``CertificateLoader`` (from the service's key manager) and calls
``render_bundle`` with the service's render options: what ``main/local_plane.py`` pushes to an
amphora. ``check_bundle`` writes the files and runs ``haproxy -c`` (and ``nft -c`` for UDP
listeners when root), returning the tools' complaints (empty when both accept it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lbaas.controller.aggregate import load_aggregate
from lbaas.controller.certificates import CertificateLoader
from lbaas.main.local_plane import render_options
from lbaas.render import RenderedBundle, render_bundle

HAPROXY = shutil.which("haproxy")
NFT = shutil.which("nft")


def render_from_api(api: Any, lb_id: str) -> RenderedBundle:
    service = api.service
    with service.engine.connect() as conn:
        aggregate = load_aggregate(conn, lb_id)
    certificates = CertificateLoader(service.settings, service.engine).load(aggregate)
    return render_bundle(aggregate, render_options(service.settings), certificates=certificates)


def check_bundle(bundle: RenderedBundle, directory: Path) -> str:
    """``haproxy -c`` (and ``nft -c``) on the bundle's files; their complaints, or ""."""
    if directory.exists():
        shutil.rmtree(directory)
    for rel, text in bundle.files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text)
    env = {**os.environ, "LBAAS_RUN_DIR": str(directory), "LBAAS_CONF_DIR": str(directory)}
    complaints = ""
    if HAPROXY is not None:
        result = subprocess.run([HAPROXY, "-c", "-f", str(directory / "haproxy.cfg")],
                                capture_output=True, text=True, env=env, timeout=60)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "[ALERT]" in output:
            complaints += output
    if "nftables.conf" in bundle.files and NFT is not None and os.geteuid() == 0:
        result = subprocess.run([NFT, "-c", "-f", str(directory / "nftables.conf")],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            complaints += result.stdout + result.stderr
    return complaints
