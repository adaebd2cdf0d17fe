"""Read TLS secrets and certificate containers from a real Barbican (``cert_manager = barbican``).

Key choice: refs are never fetched as given. Only their kind and id are kept and the URL is
rebuilt under the configured endpoint, so a user-supplied ref cannot send our Keystone token
to another host. The API passes the caller's token (their project's secrets, as upstream
validates them); the controller passes a service token. Tested at unit level only (no Barbican
runs here).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

Resolver = Callable[[str], tuple[str, str]]


class BarbicanUnavailable(Exception):
    """The ref could not be read (missing, forbidden, or Barbican unreachable)."""


class BarbicanCertManager:
    def __init__(self, endpoint: str, token: str, parse_ref: Resolver,
                 client: httpx.Client | None = None, timeout: float = 10.0) -> None:
        self.base = endpoint.rstrip("/") + "/v1"
        self.token = token
        self.parse_ref = parse_ref
        self.client = client or httpx.Client(timeout=timeout)

    def _get(self, path: str, accept: str) -> httpx.Response:
        try:
            resp = self.client.get(f"{self.base}/{path}", headers={
                "X-Auth-Token": self.token, "Accept": accept})
        except httpx.HTTPError as exc:
            raise BarbicanUnavailable(f"Barbican unreachable: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise BarbicanUnavailable(f"Barbican answered {resp.status_code} for {path}")
        return resp

    def _payload(self, secret_id: str) -> bytes:
        meta = self._get(f"secrets/{secret_id}", "application/json").json()
        content_type = (meta.get("content_types") or {}).get("default")
        if not content_type:
            raise BarbicanUnavailable(f"secret {secret_id} has no payload")
        return self._get(f"secrets/{secret_id}/payload", content_type).content

    def read_ref(self, ref: str) -> dict[str, bytes]:
        """Same shape as ``store.secrets.read_ref``: {"payload": ...} or a container's names."""
        kind, ident = self.parse_ref(ref)
        if kind == "secrets":
            return {"payload": self._payload(ident)}
        container = self._get(f"containers/{ident}", "application/json").json()
        out = {}
        for item in container.get("secret_refs") or []:
            _, secret_id = self.parse_ref(str(item.get("secret_ref", "")))
            out[str(item.get("name"))] = self._payload(secret_id)
        return out
