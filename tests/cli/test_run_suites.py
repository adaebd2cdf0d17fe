"""``make test`` (tools/run-suites): every suite runs even after one fails, then a summary, and
the exit status says whether any failed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "tools" / "run-suites"


def _run(tmp_path: Path, *suites: str) -> subprocess.CompletedProcess[str]:
    makefile = tmp_path / "Makefile"
    makefile.write_text("sqlite:\n\t@echo '1 failed, 9 passed in 1.0s'; exit 1\n"
                        "postgresql:\n\t@echo '10 passed in 2.0s'\n"
                        "mariadb:\n\t@echo '10 passed in 3.0s'\n")
    return subprocess.run([str(RUNNER), *suites], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAKE": f"make -f {makefile}"})


def test_a_failed_suite_does_not_hide_the_others(tmp_path: Path) -> None:
    out = _run(tmp_path, "sqlite", "postgresql", "mariadb")
    assert out.returncode == 1
    summary = out.stdout.split("=== summary\n", 1)[1].splitlines()
    assert [line.split()[:2] for line in summary[:3]] == [
        ["sqlite", "FAILED"], ["postgresql", "ok"], ["mariadb", "ok"]]
    assert summary[0].endswith("1 failed, 9 passed in 1.0s")
    assert summary[3] == "failed: sqlite"


def test_all_passed(tmp_path: Path) -> None:
    out = _run(tmp_path, "postgresql", "mariadb")
    assert out.returncode == 0 and out.stdout.endswith("all 2 suites passed\n")
