"""Fixtures of the scale suite: the test's own RabbitMQ, fresh databases on the machine's
PostgreSQL and MariaDB, and the markers (``scale``, ``slow``) every test here carries."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from scale_servers import RABBITMQ_SERVER, PrivateRabbit, shared_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/scale/" in str(item.fspath):
            item.add_marker(pytest.mark.scale)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def rabbit() -> Iterator[PrivateRabbit]:
    """The suite's own RabbitMQ node (a test may stop and start it)."""
    if shutil.which(RABBITMQ_SERVER) is None:
        pytest.skip("needs rabbitmq-server")
    server = PrivateRabbit()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL or MariaDB, named as octavia.conf does."""
    url, drop = shared_database(request.param)
    try:
        yield url
    finally:
        drop()
