"""The agent refuses a bundle whose nftables.conf ``nft -c`` rejects, with nft's reason, and
the previous config keeps serving. (Loading rules is tested in an amphora namespace only:
tests/dataplane/test_udp_e2e.py; this agent runs in the host's namespace.)"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from agent_helpers import AgentProcess, free_port, get, haproxy_cfg, needs_haproxy

from lbaas.drivers.base import DriverError

pytestmark = [needs_haproxy, pytest.mark.skipif(
    shutil.which("nft") is None or os.geteuid() != 0, reason="needs root and nft")]


def test_bundle_with_bad_nftables_rules_is_refused(agent: AgentProcess, backends: Any) -> None:
    b1 = backends("member-a")
    fe = free_port()
    agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "good")
    bad = "table ip lbaas_udp {\n\tchain prerouting {\n\t\tdnat ip to wrongword\n\t}\n}\n"
    with pytest.raises(DriverError) as err:
        agent.apply(haproxy_cfg(fe, [f"m1 127.0.0.1:{b1.port}"]), "bad",
                    **{"nftables.conf": bad, "udp-members.json": "{}"})
    assert "nft:" in str(err.value) and "wrongword" in str(err.value)
    assert agent.call("status", agent.compute)["digest"] == "good"
    assert get(fe)[0] == "member-a"
    assert not (agent.base / "conf" / "nftables.conf").exists()
