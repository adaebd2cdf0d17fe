"""HAProxy drops root: the service renders ``user``/``group``/``chroot`` into ``global``, the
file still passes ``haproxy -c`` without the chroot directory existing (validation makes none),
and hostile user names stay one quoted word. The running daemon's uid and root are checked in
tests/agent/test_rendered.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from render_aggregates import spec
from render_scenarios import SCENARIOS

from lbaas.main.local_plane import render_options
from lbaas.render import RenderOptions, render_haproxy_config
from lbaas.render.escaping import RenderError
from lbaas.render.haproxy import CHROOT_DIR
from lbaas.settings import load_settings
from lbaas.wire.files import HAPROXY_CHROOT

DROPPED = RenderOptions(user="nobody", group="nogroup", chroot=True)


def _global(text: str) -> list[str]:
    block = text.split("\nglobal\n", 1)[1].split("\n\n", 1)[0]
    return [ln.strip() for ln in block.splitlines()]


def test_the_service_defaults_drop_to_nobody_in_a_chroot() -> None:
    options = render_options(load_settings(environ={}))
    assert (options.user, options.group, options.chroot) == ("nobody", "nogroup", True)
    lines = _global(render_haproxy_config(spec(SCENARIOS[sorted(SCENARIOS)[0]]()), options))
    assert "user 'nobody'" in lines and "group 'nogroup'" in lines
    assert f'chroot "${{LBAAS_RUN_DIR}}/{HAPROXY_CHROOT}"' in lines


def test_render_and_agent_agree_on_the_chroot_directory() -> None:
    assert CHROOT_DIR == HAPROXY_CHROOT


def test_group_defaults_to_the_users_own_group() -> None:
    options = render_options(load_settings(environ={}, overrides={
        "haproxy": {"user": "nobody", "group": ""}}))
    assert options.group == "nogroup"


def test_empty_user_keeps_root_and_renders_nothing() -> None:
    options = render_options(load_settings(environ={}, overrides={
        "haproxy": {"user": "", "group": "", "chroot": False}}))
    lines = _global(render_haproxy_config(spec(SCENARIOS[sorted(SCENARIOS)[0]]()), options))
    assert not [ln for ln in lines if ln.split(" ")[0] in ("user", "group", "chroot")]


def test_unknown_user_or_group_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="no user"):
        render_options(load_settings(environ={}, overrides={
            "haproxy": {"user": "no-such-user-lbaas"}}))
    with pytest.raises(ValueError, match="no group"):
        render_options(load_settings(environ={}, overrides={
            "haproxy": {"group": "no-such-group-lbaas"}}))


def test_user_name_with_newline_is_refused() -> None:
    with pytest.raises(RenderError):
        render_haproxy_config(spec(SCENARIOS[sorted(SCENARIOS)[0]]()),
                              RenderOptions(user="nobody\n    lua-load /x", chroot=True))


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_dropped_config_passes_haproxy_check_without_the_chroot(name: str, tmp_path: Path) \
        -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_haproxy_config(spec(SCENARIOS[name]()), DROPPED))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True,
                            env={**os.environ, "LBAAS_RUN_DIR": str(run_dir)}, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr
    assert not (run_dir / HAPROXY_CHROOT).exists()
