"""The agent's files: staged bundles, versioned config directories and the active pointer.

Layout under the base directory (all 0700, files 0600):
  staging-<rand>/   a bundle being written and checked
  versions/<n>/     a complete config, with its digest in ``.digest``
  conf -> versions/<n>   symlink; HAProxy is started with conf/haproxy.cfg
  run/              sockets, pid file, HAProxy's log

Key choice: ``conf`` is a symlink replaced with one ``rename(2)``, so the config files and the
digest that describes them change together atomically; a crash leaves either the old or the new.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from lbaas.agent.layout import DIGEST_FILE
from lbaas.wire.agent_api import Bundle

_KEEP_VERSIONS = 2


class ConfigStore:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "conf"
        self.run = base / "run"
        self.versions = base / "versions"
        for directory in (base, self.run, self.versions):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in base.glob("staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def active_digest(self) -> str | None:
        try:
            return (self.conf / DIGEST_FILE).read_text().strip() or None
        except OSError:
            return None

    def active_file(self, relpath: str) -> str | None:
        try:
            return (self.conf / relpath).read_text()
        except OSError:
            return None

    def active_version(self) -> str | None:
        try:
            return os.readlink(self.conf)
        except OSError:
            return None

    def stage(self, bundle: Bundle) -> Path:
        """Write the bundle into a fresh staging directory and return it."""
        staging = self.base / f"staging-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)
        try:
            for relpath, text in [*bundle.files.items(), (DIGEST_FILE, bundle.digest + "\n")]:
                path = staging / relpath
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
        except OSError:
            self.discard(staging)
            raise
        return staging

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def activate(self, staging: Path) -> str | None:
        """Make ``staging`` the active config; return the previous version's link target."""
        previous = self.active_version()
        numbers = [int(p.name) for p in self.versions.iterdir() if p.name.isdigit()]
        name = str(max(numbers, default=0) + 1)
        os.rename(staging, self.versions / name)
        self._point_to(f"versions/{name}")
        self._prune(keep={name, *(previous or "").split("/")[-1:]})
        return previous

    def restore(self, previous: str | None) -> None:
        """Point ``conf`` back at ``previous`` (after HAProxy refused to run the new config)."""
        if previous is None:
            self.conf.unlink(missing_ok=True)
        else:
            self._point_to(previous)

    def _point_to(self, target: str) -> None:
        tmp = self.base / f".conf-{secrets.token_hex(4)}"
        os.symlink(target, tmp)
        os.replace(tmp, self.conf)

    def _prune(self, keep: set[str]) -> None:
        numbered = sorted((p for p in self.versions.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name))
        for old in numbered[:-_KEEP_VERSIONS]:
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
