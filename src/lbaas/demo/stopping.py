"""How a demo server waits for its stop: the first SIGINT or SIGTERM, and no later one.

Key choice: after the first signal the handlers are removed and further signals ignored. A
``kill %1`` of an ``lbaas backend`` job signals the whole process group, and ``lbaas backend``
forwards the signal to its server too; a second signal arriving while ``asyncio.run`` closes
its loop would hit the closed wakeup fd ("Exception ignored when trying to write to the signal
wakeup fd: OSError: [Errno 9] Bad file descriptor").
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def stop_signal() -> AsyncIterator[asyncio.Event]:
    """An event set by the first signal; say "listening" inside, so no signal can come first."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)  # already stopping
