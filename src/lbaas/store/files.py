"""Private files: the data directory is 0700, the SQLite database and its -wal/-shm 0600.

The data directory holds the database, the key that seals secrets, the internal CA's keys and
the heartbeat key; nobody but the service's user needs to read any of it. Key choice: the
database file is created empty with mode 0600 before SQLite opens it, because SQLite gives its
-wal and -shm files the database file's mode; an existing installation's files are tightened
at the next start (when this user owns them).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & ~mode:
        path.chmod(stat.S_IMODE(st.st_mode) & mode)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing; ``path`` itself ends up 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file (0600) if missing, and tighten an existing one."""
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_SIDE_FILES)):
        _tighten(candidate, FILE_MODE)
