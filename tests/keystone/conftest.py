"""A real Keystone for the session, and lbaas services that authenticate against it.

The session fixture installs Keystone (first run only), bootstraps it on SQLite, starts it under
gunicorn on a free loopback port, creates projects A and B with one user per role to test, and
removes everything at the end. ``keystone_api(**api_settings)`` starts lbaas with
``auth_strategy = "keystone"`` and returns one client per user, each sending its own token.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from keystone_server import KeystoneServer, ensure_venv

PASSWORD = "lbaas-test-password"
PROJECTS = ["A", "B"]
# user -> (project, role) grants. Keystone's implied roles add reader to member, and member and
# reader to admin.
USERS: dict[str, list[tuple[str, str]]] = {
    "member-a": [("A", "member")],
    "member-b": [("B", "member")],
    "reader-a": [("A", "reader")],
    "admin-a": [("A", "admin")],
    "observer-a": [("A", "load-balancer_observer")],
    "lbmember-a": [("A", "load-balancer_member")],
    "global-observer-a": [("A", "load-balancer_global_observer")],
    "lbadmin-a": [("A", "load-balancer_admin")],
    "unrelated-a": [("A", "unrelated")],
    "octavia": [("service", "service")],  # the service user keystonemiddleware validates with
}


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    server = KeystoneServer(ensure_venv(), tmp_path_factory.mktemp("keystone"))
    try:
        server.prepare()
        server.start()
        server.provision(PROJECTS, USERS, PASSWORD)
        yield server
    finally:
        server.stop()


class Tokens:
    """Project-scoped tokens, one per user, fetched once per session."""

    def __init__(self, server: KeystoneServer) -> None:
        self.server = server
        self._tokens: dict[str, str] = {}

    def __getitem__(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = self.fresh(user)
        return self._tokens[user]

    def fresh(self, user: str) -> str:
        return self.server.token(user, PASSWORD, USERS[user][0][0])


@pytest.fixture(scope="session")
def tokens(keystone: KeystoneServer) -> Tokens:
    return Tokens(keystone)


@pytest.fixture(scope="session")
def project(keystone: KeystoneServer) -> dict[str, str]:
    """Project name -> Keystone project id."""
    return {name: keystone.ids[f"project:{name}"] for name in PROJECTS}


class Users:
    """``users["member-a"]`` is an ``Api`` client that sends member-a's token."""

    def __init__(self, anonymous: Any, tokens: Tokens) -> None:
        self.anonymous = anonymous  # sends no token at all
        self.tokens = tokens
        self._clients: dict[str, Any] = {}

    def __getitem__(self, user: str) -> Any:
        if user not in self._clients:
            api = type(self.anonymous)(self.anonymous.client, self.anonymous.service)
            api.headers = {"X-Auth-Token": self.tokens[user]}
            self._clients[user] = api
        return self._clients[user]


@pytest.fixture()
def keystone_api(service_factory: Any, keystone: KeystoneServer,
                 tokens: Tokens) -> Callable[..., Users]:
    def start(keystone_settings: dict[str, Any] | None = None, **api_settings: Any) -> Users:
        anonymous = service_factory(
            api={"auth_strategy": "keystone", **api_settings},
            keystone={"www_authenticate_uri": keystone.url, "auth_url": keystone.url,
                      "username": "octavia", "password": PASSWORD,
                      "project_name": "service", **(keystone_settings or {})})
        return Users(anonymous, tokens)

    return start
