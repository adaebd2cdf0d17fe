"""Golden files: each scenario's haproxy.cfg is compared byte for byte with tests/render/golden/,
and every golden file must pass the real ``haproxy -c`` without warnings.

Regenerate with ``UPDATE_GOLDEN=1 pytest tests/render`` and review the diff by eye.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from render_aggregates import clone, spec
from render_scenarios import SCENARIOS

from lbaas.render import RenderOptions, render_bundle, render_haproxy_config

GOLDEN = Path(__file__).parent / "golden"
OPTIONS = RenderOptions()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_golden_file(name: str) -> None:
    text = render_haproxy_config(spec(SCENARIOS[name]()), OPTIONS)
    path = GOLDEN / f"{name}.cfg"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing {path}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_file_passes_haproxy_check(name: str, tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    env = {**os.environ, "LBAAS_RUN_DIR": str(tmp_path)}
    result = subprocess.run([haproxy, "-c", "-f", str(GOLDEN / f"{name}.cfg")],
                            capture_output=True, text=True, env=env, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]" not in output and "[ALERT]" not in output, output


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_output_ignores_input_order(name: str) -> None:
    lb = SCENARIOS[name]()
    shuffled = clone(lb)
    rng = random.Random(name)
    rng.shuffle(shuffled["listeners"])
    rng.shuffle(shuffled["pools"])
    for p in shuffled["pools"]:
        rng.shuffle(p["members"])
    assert render_bundle(spec(shuffled), OPTIONS) == render_bundle(spec(lb), OPTIONS)
