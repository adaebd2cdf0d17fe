"""Placement rules and the host-agent contract, without hosts."""

from __future__ import annotations

import pytest

from lbaas.drivers.base import AgentCredentials, AmphoraSpec, SubnetInfo, SubnetPlug
from lbaas.drivers.fleet import wire
from lbaas.drivers.fleet.placement import DRAINING, Candidate, NoHost, choose
from lbaas.drivers.local.overlay import vni_for, vxlan_name
from lbaas.hostagent.server import peer_is_controller


def host(name: str, load: int = 0, zone: str = "az1", live: bool = True,
         state: str = "ENABLED", capacity: int = 10) -> Candidate:
    return Candidate(name=name, zone=zone, capacity=capacity, load=load, live=live, state=state)


def test_least_loaded_then_by_name() -> None:
    assert choose([host("h2"), host("h1"), host("h3")], None, set()) == "h1"
    assert choose([host("h1", 2), host("h2", 1), host("h3", 1)], None, set()) == "h2"
    # relative to capacity: 3 of 10 is less loaded than 2 of 4
    assert choose([host("h1", 2, capacity=4), host("h2", 3)], None, set()) == "h2"


def test_skips_down_draining_full_other_zone_and_the_peer() -> None:
    hosts = [host("h1", live=False), host("h2", state=DRAINING), host("h3", 10),
             host("h4", zone="az2"), host("h5", 5), host("h6", 6)]
    assert choose(hosts, "az1", {"h5"}) == "h6"
    assert choose(hosts, "az2", set()) == "h4"
    with pytest.raises(NoHost) as err:
        choose(hosts, "az1", {"h5", "h6"})
    text = str(err.value)
    for why in ("h1: down", "h2: draining", "h3: full", "h4: zone az2",
                "h5: holds the peer amphora"):
        assert why in text


def test_anti_affinity_is_strict() -> None:
    with pytest.raises(NoHost):
        choose([host("h1", 1)], None, {"h1"})


def test_spec_round_trip() -> None:
    subnet = SubnetInfo("n", "s", "10.0.0.0/24", "10.0.0.1")
    spec = AmphoraSpec(
        amphora_id="a", load_balancer_id="l", role="MASTER", vrrp_priority=100,
        vip_address="10.0.0.5", vip_subnet_id="s", vip_network_id="n",
        mgmt=SubnetPlug(subnet, "10.0.0.9"), vip=SubnetPlug(subnet, "10.0.0.8"),
        credentials=AgentCredentials("ca", "cert", "key", "hb", ("10.0.0.1:5555",), 0.5),
        zone="az1")
    assert wire.spec_from(wire.spec_to_json(spec)) == spec
    assert wire.split_compute_id("h1/amp-0123456789ab") == ("h1", "amp-0123456789ab")


def test_vni_is_stable_and_in_range() -> None:
    assert vni_for("x") == vni_for("x") != vni_for("y")
    assert all(1 <= vni_for(str(i)) < 2 ** 24 - 1 for i in range(1000))
    assert len(vxlan_name("x")) <= 15


def test_only_the_controller_certificate_is_answered() -> None:
    def cert(cn: str) -> dict[str, object]:
        return {"subject": ((("commonName", cn),),)}
    assert peer_is_controller(cert("controller"))
    assert not peer_is_controller(cert("0a1b2c3d-amphora"))
    assert not peer_is_controller(None)
    assert not peer_is_controller({})


class _Agent:
    async def start_backend(self, body: dict[str, object]) -> dict[str, object]:
        return {"started": body.get("address")}


@pytest.mark.parametrize("demo", [False, True])
def test_demo_backend_calls_only_on_a_lab_host_agent(demo: bool) -> None:
    """``/v1/backends`` starts demo members (``lbaas lab backend``): a production host-agent
    (no ``--demo-backends``) answers it 404, as any path it does not serve."""
    import asyncio

    from lbaas.hostagent.server import HostAgentServer

    server = HostAgentServer(_Agent(), demo_backends=demo)  # type: ignore[arg-type]
    status, body = asyncio.run(server._dispatch("POST", wire.BACKENDS_PATH,
                                                b'{"address": "10.0.0.9"}'))
    assert (status, body) == ((200, {"started": "10.0.0.9"}) if demo
                              else (404, {"error": "not found"}))
