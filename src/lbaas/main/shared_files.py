"""The files every process of a deployment shares, made once and then only read.

``settings.shared_path`` (``shared_dir``, else ``data_dir``) holds the internal CA (``pki/``,
with the controller's client certificate), ``secrets_key`` (the key manager's payload key) and
``heartbeat_key``. The first process to start makes whichever is missing; key choice: it does so
under an exclusive ``flock`` on ``shared_path/.lock``, so processes started together on one
machine never write two CAs or a client certificate that does not match its key. On several
machines the directory is copied from the first one (docs/deploy.md): nothing in it changes
after it is made, except the client certificate renewed a month before it expires.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from lbaas.settings import Settings, heartbeat_key
from lbaas.store.files import private_dir
from lbaas.store.secrets import secret_box

LOCK_FILE = ".lock"


@contextmanager
def shared_files_lock(settings: Settings) -> Iterator[None]:
    directory = settings.shared_path
    private_dir(directory)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def ensure_shared_keys(settings: Settings) -> None:
    """Make the secrets key and (unless set in settings) the heartbeat key if missing."""
    with shared_files_lock(settings):
        secret_box(settings.shared_path)
        if settings.health.enabled:
            heartbeat_key(settings)
