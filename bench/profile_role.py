"""Run one lbaas role under yappi (CPU clock, every thread) and save its profile on exit.

Used by ``bench/bench_scale.py --profile DIR``: ``python bench/profile_role.py OUT.pstat
worker --config …`` runs ``lbaas worker --config …``; read the result with
``python -m pstats OUT.pstat``. Needs ``pip install yappi`` (not a project dependency).
"""

from __future__ import annotations

import atexit
import signal
import sys

import yappi

from lbaas.main.cli import main


def run(out: str, argv: list[str]) -> int:
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)

    def save() -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    atexit.register(save)
    # uvicorn re-raises SIGTERM under the handler it found once it has shut down: exit then
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1], sys.argv[2:]))
