"""The dashboard's files, read once from the package's ``static/`` folder.

Only the files found there at start are served, looked up by exact name, so no request path can
reach anything else. Each carries a strong ETag; browsers revalidate (``no-cache``) so an
upgrade is seen at the next load without versioned file names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load(root: Path = ROOT) -> dict[str, StaticFile]:
    """``relative/path`` -> file, for every servable file under ``root``."""
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        kind = CONTENT_TYPES.get(path.suffix)
        if kind is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[path.relative_to(root).as_posix()] = StaticFile(body, kind, etag)
    return files
