"""Bundles made by the real renderer, pushed through the driver: the agent's runtime path must
match what `render` writes for member changes (weight, admin state, add, remove)."""

from __future__ import annotations

import importlib.util
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from agent_helpers import AgentProcess, free_port, get, needs_haproxy, wait_for

from lbaas.render import RenderOptions, render_bundle

pytestmark = needs_haproxy

_spec = importlib.util.spec_from_file_location(
    "agent_render_aggregates", Path(__file__).parents[1] / "render" / "render_aggregates.py")
assert _spec is not None and _spec.loader is not None
agg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agg)


def _lb(fe: int, members: list[dict[str, Any]], **pool_over: Any) -> dict[str, Any]:
    p = agg.pool(1, members=members, **pool_over)
    return agg.load_balancer(vip_address="127.0.0.1", pools=[p],
                             listeners=[agg.listener(1, port=fe, default_pool_id=p["id"])])


def _push(agent: AgentProcess, lb: dict[str, Any]) -> str:
    bundle = render_bundle(agg.spec(lb), RenderOptions())
    result = agent.call("push", agent.compute, {"files": bundle.files}, bundle.digest)
    assert result["digest"] == bundle.digest
    assert agent.call("status", agent.compute)["digest"] == bundle.digest
    return result["applied"]


def _bodies(port: int, n: int) -> Counter[str]:
    return Counter(get(port)[0] for _ in range(n))


def test_rendered_member_changes_apply_at_runtime(agent: AgentProcess, backends: Any) -> None:
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    hm = agg.monitor(1, 1, delay=1, timeout=1)
    m1 = agg.member(1, 1, "127.0.0.1", a.port)
    m2 = agg.member(2, 1, "127.0.0.1", b.port)
    assert _push(agent, _lb(fe, [m1], healthmonitor=hm)) == "start"
    assert wait_for(lambda: get(fe)[0] == "member-a")
    pid = agent.worker_pid()

    assert _push(agent, _lb(fe, [m1, m2], healthmonitor=hm)) == "runtime"
    assert wait_for(lambda: set(_bodies(fe, 6)) == {"member-a", "member-b"})
    assert _push(agent, _lb(fe, [{**m1, "weight": 5}, {**m2, "admin_state_up": False}],
                            healthmonitor=hm)) == "runtime"
    assert _bodies(fe, 4) == Counter({"member-a": 4})
    assert _push(agent, _lb(fe, [m2], healthmonitor=hm)) == "runtime"  # m2 is back up
    assert wait_for(lambda: _bodies(fe, 4) == Counter({"member-b": 4}))

    assert agent.worker_pid() == pid


def test_rendered_cookie_persistence_add_falls_back_to_reload(agent: AgentProcess,
                                                             backends: Any) -> None:
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    sp = {"type": "HTTP_COOKIE", "cookie_name": None, "persistence_timeout": None,
          "persistence_granularity": None}
    m1 = agg.member(1, 1, "127.0.0.1", a.port)
    m2 = agg.member(2, 1, "127.0.0.1", b.port)
    _push(agent, _lb(fe, [m1], session_persistence=sp))

    assert _push(agent, _lb(fe, [m1, m2], session_persistence=sp)) == "reload"
    assert set(_bodies(fe, 6)) == {"member-a", "member-b"}


DROPPED = RenderOptions(user="nobody", group="nogroup", chroot=True)


def _ids(pid: int, key: str) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {int(v) for v in next(ln for ln in status.splitlines()
                                 if ln.startswith(key + ":")).split()[1:]}


def _assert_unprivileged(agent: AgentProcess, pid: int) -> None:
    """Real, effective, saved and filesystem ids are not root's; its root is the empty chroot."""
    assert 0 not in _ids(pid, "Uid") and 0 not in _ids(pid, "Gid")
    chroot = agent.base / "run" / "haproxy-chroot"
    assert os.readlink(f"/proc/{pid}/root") == str(chroot)
    st = chroot.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o555)
    assert not any(chroot.iterdir())


def test_haproxy_drops_to_nobody_in_an_empty_chroot_and_still_serves_reloads_and_runtime(
        agent: AgentProcess, backends: Any) -> None:
    a, b = backends("member-a"), backends("member-b")
    fe = free_port()
    m1 = agg.member(1, 1, "127.0.0.1", a.port)
    m2 = agg.member(2, 1, "127.0.0.1", b.port)
    sp = {"type": "HTTP_COOKIE", "cookie_name": None, "persistence_timeout": None,
          "persistence_granularity": None}

    def push(lb: dict[str, Any]) -> str:
        bundle = render_bundle(agg.spec(lb), DROPPED)
        assert "\n    user 'nobody'\n" in bundle.files["haproxy.cfg"]
        return str(agent.call("push", agent.compute, {"files": bundle.files},
                              bundle.digest)["applied"])

    assert push(_lb(fe, [m1])) == "start"
    assert wait_for(lambda: get(fe)[0] == "member-a")
    first = agent.worker_pid()
    _assert_unprivileged(agent, first)

    # runtime API over the stats socket the root launcher made before the drop
    assert push(_lb(fe, [m1, m2])) == "runtime"
    assert wait_for(lambda: set(_bodies(fe, 6)) == {"member-a", "member-b"})
    assert agent.worker_pid() == first

    # a reload: a new root launcher takes the listeners over the socket, then drops again
    assert push(_lb(fe, [m1, m2], session_persistence=sp)) == "reload"
    second = agent.worker_pid()  # the push returns once the new daemon answers
    assert second != first
    assert set(_bodies(fe, 6)) == {"member-a", "member-b"}
    _assert_unprivileged(agent, second)
