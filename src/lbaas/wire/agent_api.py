"""The amphora agent's HTTPS API: paths, port, version and the JSON shapes, as typed helpers.

Key choice: a bundle is a flat ``{relpath: text}`` map plus an opaque digest chosen by the
controller; the agent never derives the digest, it only stores and reports it. Paths are checked
here (both sides use the same rule) so no bundle can write outside the agent's config directory.
See docs/agent-protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from lbaas.wire.files import (  # noqa: F401  (part of this module's API)
    AGENT_PORT,
    ENV_CONF_DIR,
    ENV_RUN_DIR,
    HAPROXY_CFG,
    KEEPALIVED_CONF,
)

API_VERSION = "1.0"

INFO_PATH = "/v1/info"
BUNDLE_PATH = "/v1/bundle"
STATUS_PATH = "/v1/status"
STATS_PATH = "/v1/stats"

MAX_FILES = 256
MAX_PATH_LEN = 255

Applied = Literal["start", "reload", "runtime", "unchanged"]
APPLIED_VALUES: tuple[str, ...] = ("start", "reload", "runtime", "unchanged")


class WireError(ValueError):
    """A message does not follow the contract (the agent answers 400 with this text)."""


class InfoResponse(TypedDict):
    amphora_id: str
    api_version: str


class ApplyResponse(TypedDict):
    digest: str
    applied: Applied


class StatusResponse(TypedDict):
    digest: str | None
    haproxy_running: bool
    amphora_id: str


class ErrorResponse(TypedDict):
    error: str


# "pxname/svname" -> {field: int | str} from HAProxy's `show stat`.
StatsResponse = dict[str, dict[str, int | str]]


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a safe relative path; raise WireError otherwise.

    Refused: empty, absolute, NUL, backslashes, components that are empty, "." or "..", and any
    component starting with "." (names the agent keeps for itself, such as its digest file).
    """
    if not isinstance(path, str) or not path:
        raise WireError("file path must be a non-empty string")
    if len(path) > MAX_PATH_LEN:
        raise WireError(f"file path longer than {MAX_PATH_LEN} characters")
    if "\x00" in path or "\\" in path:
        raise WireError(f"file path {path!r} contains NUL or backslash")
    if path.startswith("/"):
        raise WireError(f"file path {path!r} is absolute")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise WireError(f"file path {path!r} has an empty, '.' or '..' component")
        if part.startswith("."):
            raise WireError(f"file path {path!r} has a hidden component (reserved)")
    return path


@dataclass(frozen=True)
class Bundle:
    """A whole configuration for one amphora: ``{"digest": str, "files": {relpath: text}}``."""

    digest: str
    files: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": dict(self.files)}

    @classmethod
    def from_json(cls, obj: Any) -> Bundle:
        if not isinstance(obj, dict):
            raise WireError("bundle must be a JSON object")
        digest = obj.get("digest")
        files = obj.get("files")
        if not isinstance(digest, str) or not digest or len(digest) > 128:
            raise WireError("bundle digest must be a non-empty string (at most 128 characters)")
        if not digest.isprintable() or any(c.isspace() for c in digest):
            raise WireError("bundle digest must be printable without spaces")
        if not isinstance(files, dict) or not files:
            raise WireError("bundle files must be a non-empty object")
        if len(files) > MAX_FILES:
            raise WireError(f"bundle has more than {MAX_FILES} files")
        checked: dict[str, str] = {}
        for path, text in files.items():
            check_relpath(path)
            if not isinstance(text, str):
                raise WireError(f"file {path!r} content must be a string")
            if "\x00" in text:
                raise WireError(f"file {path!r} contains NUL")
            checked[path] = text
        _check_no_prefix_clash(checked)
        if HAPROXY_CFG not in checked:
            raise WireError(f"bundle must contain {HAPROXY_CFG}")
        return cls(digest=digest, files=checked)


def _check_no_prefix_clash(files: dict[str, str]) -> None:
    """Refuse "a" and "a/b" together: "a" cannot be both a file and a directory."""
    names = set(files)
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise WireError(f"file path {path!r} is below another file")


def parse_apply_response(obj: Any) -> ApplyResponse:
    if (not isinstance(obj, dict) or not isinstance(obj.get("digest"), str)
            or obj.get("applied") not in APPLIED_VALUES):
        raise WireError(f"unexpected apply response: {obj!r}"[:300])
    return ApplyResponse(digest=obj["digest"], applied=obj["applied"])


def parse_info_response(obj: Any) -> InfoResponse:
    if (not isinstance(obj, dict) or not isinstance(obj.get("amphora_id"), str)
            or not isinstance(obj.get("api_version"), str)):
        raise WireError(f"unexpected info response: {obj!r}"[:300])
    return InfoResponse(amphora_id=obj["amphora_id"], api_version=obj["api_version"])


def parse_status_response(obj: Any) -> StatusResponse:
    if (not isinstance(obj, dict) or not isinstance(obj.get("haproxy_running"), bool)
            or not (obj.get("digest") is None or isinstance(obj.get("digest"), str))):
        raise WireError(f"unexpected status response: {obj!r}"[:300])
    return StatusResponse(digest=obj["digest"], haproxy_running=obj["haproxy_running"],
                          amphora_id=str(obj.get("amphora_id", "")))


def error_text(obj: Any, fallback: str) -> str:
    """The ``error`` member of an error answer, or ``fallback``."""
    if isinstance(obj, dict) and isinstance(obj.get("error"), str):
        return obj["error"]
    return fallback
