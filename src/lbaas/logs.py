"""Logging for the lbaas processes: one format, and the request id of the work in hand.

The request id (``req-<uuid>``, Octavia's ``x-openstack-request-id``) lives in a context
variable: the API binds it for each request, the reconciler binds the one stored with the load
balancer it works on. Key choice: a log record factory (installed when this module is imported)
copies it onto every record as ``request_id``, so any handler — the console's or a test's
``caplog`` — sees it, and ``FORMAT`` prints it as ``[req-...]`` when there is one.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("lbaas_request_id", default=None)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(request_tag)s%(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ACCESS_LOGGER = "lbaas.api.access"
# Chatty libraries: their INFO lines say nothing an operator needs.
QUIET = ("alembic", "httpx", "httpcore")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextlib.contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Log lines within carry ``request_id`` (None: none)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "lbaas_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        rid = REQUEST_ID.get()
        record.request_id = rid
        record.request_tag = f"[{rid}] " if rid else ""
        return record

    factory.lbaas_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


def configure_logging(level: str = "INFO", access_log: bool = False) -> None:
    """The console format for every command; ``access_log`` turns on one INFO line per API
    request (logger ``lbaas.api.access``)."""
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    # DEBUG shows the API requests too
    verbose = access_log or logging.getLogger().level <= logging.DEBUG
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if verbose else logging.WARNING)
