"""Secrets and containers of the built-in key manager, encrypted at rest.

Key choice: payloads are Fernet tokens (AES-128-CBC + HMAC-SHA256) under one key generated on
first start in ``data_dir/secrets_key`` (mode 600); the database alone never reveals a payload.
Refs are Barbican URLs (``.../v1/secrets/<uuid>``, ``.../v1/containers/<uuid>``); only the last
two path segments matter, so refs naming another host but this server's ids still resolve, as
the listener tests' fixtures always did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, select

from lbaas.store import tables as t
from lbaas.store.files import private_dir

KEY_FILE = "secrets_key"


class SecretUnavailable(Exception):
    """A ref that names no readable secret of the project (missing, foreign or undecryptable)."""


@dataclass(frozen=True)
class SecretBox:
    fernet: Fernet

    def seal(self, payload: bytes) -> str:
        return self.fernet.encrypt(payload).decode("ascii")

    def open(self, token: str) -> bytes:
        try:
            return self.fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            raise SecretUnavailable("payload cannot be decrypted") from None


@lru_cache(maxsize=8)
def _box(key_path: str) -> SecretBox:
    path = Path(key_path)
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        private_dir(path.parent)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            key = path.read_bytes().strip()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + b"\n")
    return SecretBox(Fernet(key))


def secret_box(shared_dir: Path) -> SecretBox:
    """The box for ``shared_dir`` (settings.shared_path; key generated on first use)."""
    return _box(str((shared_dir / KEY_FILE).resolve()))


def parse_ref(ref: str) -> tuple[str, str]:
    """("secrets" | "containers", id) from a ref URL (or ("secrets", ref) for a bare id)."""
    parts = [p for p in ref.split("?", 1)[0].rstrip("/").split("/") if p]
    if len(parts) >= 2 and parts[-2] in ("secrets", "containers"):
        return parts[-2], parts[-1]
    return "secrets", parts[-1] if parts else ""


def secret_row(conn: Connection, project_id: str | None, secret_id: str) -> Any:
    row = conn.execute(select(t.secret).where(t.secret.c.id == secret_id)).first()
    if row is None or row.project_id != project_id:
        raise SecretUnavailable(secret_id)
    return row


def container_row(conn: Connection, project_id: str | None, container_id: str) -> Any:
    row = conn.execute(select(t.secret_container).where(
        t.secret_container.c.id == container_id)).first()
    if row is None or row.project_id != project_id:
        raise SecretUnavailable(container_id)
    return row


def read_payload(conn: Connection, box: SecretBox, project_id: str | None,
                 secret_id: str) -> bytes:
    return box.open(secret_row(conn, project_id, secret_id).payload or "")


def ref_exists(conn: Connection, project_id: str | None, ref: str) -> bool:
    kind, ident = parse_ref(ref)
    try:
        (secret_row if kind == "secrets" else container_row)(conn, project_id, ident)
    except SecretUnavailable:
        return False
    return True


def read_ref(conn: Connection, box: SecretBox, project_id: str | None,
             ref: str) -> dict[str, bytes]:
    """The named payloads behind ``ref``: a secret gives {"payload": ...}; a container gives
    one entry per secret it names (certificate, private_key, intermediates, ...)."""
    kind, ident = parse_ref(ref)
    if kind == "secrets":
        return {"payload": read_payload(conn, box, project_id, ident)}
    row = container_row(conn, project_id, ident)
    return {item["name"]: read_payload(conn, box, project_id, item["secret_id"])
            for item in row.secret_refs}
