"""The tempest venv: tempest and octavia-tempest-plugin at pinned versions, apart from .venv.

Tempest pins its own dependency tree (oslo.*, stestr, paramiko), so it lives in a venv of its own,
``.cache/tempest-venv`` by default (``LBAAS_TEMPEST_VENV`` moves it). It is built once with pip
from ``constraints.txt`` (the frozen tree of a working install) and reused while its marker
names the same pins; a lock file keeps two runs from building it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPEST_VERSION = "47.0.0"
PLUGIN_VERSION = "3.5.0"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONSTRAINTS = HERE / "constraints.txt"


def venv_dir() -> Path:
    path = os.environ.get("LBAAS_TEMPEST_VENV") or REPO / ".cache" / "tempest-venv"
    return Path(path).resolve()


def _marker(venv: Path) -> Path:
    pins = f"{TEMPEST_VERSION} {PLUGIN_VERSION} ".encode() + CONSTRAINTS.read_bytes()
    return venv / f".installed-{hashlib.sha256(pins).hexdigest()[:16]}"


def _runnable(venv: Path) -> bool:
    try:
        return subprocess.run([venv / "bin" / "tempest", "--version"], capture_output=True,
                              timeout=120).returncode == 0
    except OSError:
        return False


def ensure_venv() -> Path:
    """Build the venv unless a finished build with the same pins is there; return its path."""
    venv = venv_dir()
    if _marker(venv).exists() and _runnable(venv):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker(venv).exists() and _runnable(venv):
            return venv
        print(f"building {venv} (tempest {TEMPEST_VERSION}, octavia-tempest-plugin "
              f"{PLUGIN_VERSION})", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-c", str(CONSTRAINTS),
                        f"tempest=={TEMPEST_VERSION}",
                        f"octavia-tempest-plugin=={PLUGIN_VERSION}"], check=True)
        _marker(venv).touch()
    return venv


if __name__ == "__main__":
    print(ensure_venv())
