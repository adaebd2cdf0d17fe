"""Issue 10 item 4, containment: an object the data plane refuses blocks nothing else.

Through the API with the fake drivers. The fake amphora is made to refuse, as an agent whose
``haproxy -c`` fails answers, every bundle holding a marker value (``BundleRefused``); for the
certificate case the real renderer runs instead of the fake one, with the certificates read
from the key manager, and the secret is deleted under a live listener. Before containment every
later change to the load balancer went ERROR and failover was refused with it; now the refused
object stays ERROR (at its last accepted version, or left out) and the rest converges.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from sqlalchemy import delete

from lbaas.controller.certificates import CertificateLoader, KeyManagerUnavailable
from lbaas.domain.spec import LoadBalancerSpec
from lbaas.drivers.base import BundleRefused
from lbaas.render import RenderOptions, render_bundle
from lbaas.store import tables as t
from tls_material import seal_secret, universal

V2 = "/v2/lbaas"
AMPS = "/v2/octavia/amphorae"
REFUSED_ADDRESS = "10.66.66.66"
REFUSED_PATH = "/refused-by-the-data-plane"


def created(api: Any, lb_id: str, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    code, data = api.post(f"{V2}/{path}", {kind: body})
    assert code in (201, 202), data
    api.wait_lb(lb_id)
    return dict(data[kind])


def status(api: Any, path: str, kind: str) -> str:
    code, data = api.get(f"{V2}/{path}")
    assert code == 200, data
    return str(data[kind]["provisioning_status"])


def served(api: Any) -> dict[str, Any]:
    """The aggregate the (only) fake amphora was last given."""
    [bundle] = api.service.drivers.amphora.bundles.values()
    return dataclasses.asdict(bundle["desired"])


def refuse_markers(api: Any) -> list[int]:
    """Make the fake amphora refuse any bundle holding the marker values; count refusals."""
    amphora = api.service.drivers.amphora
    apply, refusals = amphora.apply, []

    async def refusing(compute: Any, bundle: dict[str, Any], digest: str) -> str:
        text = repr(bundle)
        if REFUSED_ADDRESS in text or REFUSED_PATH in text:
            refusals.append(1)
            raise BundleRefused("[ALERT] config : refused by the test")
        return await apply(compute, bundle, digest)

    amphora.apply = refusing
    return refusals


def real_render(api: Any) -> dict[str, bool]:
    """Render with the real renderer and the key manager's certificates instead of the fake
    one; while the returned ``{"outage": True}`` the key manager cannot be reached."""
    loader = CertificateLoader(api.service.settings, api.service.engine)
    state = {"outage": False}

    def render(aggregate: LoadBalancerSpec, amphora: Any = None) -> tuple[dict[str, Any], str]:
        if state["outage"]:
            raise KeyManagerUnavailable("Barbican unreachable: ConnectError")
        bundle = render_bundle(aggregate, RenderOptions(), amphora,
                               certificates=loader.load(aggregate))
        return {"files": bundle.files, "desired": aggregate}, bundle.digest

    api.service.drivers.render = render
    return state


@pytest.fixture()
def site(api: Any) -> dict[str, Any]:
    lb = api.create_lb(name="contained")
    listener = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    pool = created(api, lb["id"], "pools", "pool", {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    member = created(api, lb["id"], f"pools/{pool['id']}/members", "member",
                     {"address": "10.0.0.10", "protocol_port": 80})
    hm = created(api, lb["id"], "healthmonitors", "healthmonitor", {
        "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3,
        "url_path": "/health"})
    return {"api": api, "lb": lb, "listener": listener, "pool": pool, "member": member,
            "hm": hm, "refusals": refuse_markers(api)}


def members_served(api: Any) -> set[str]:
    return {m["address"] for p in served(api)["pools"] for m in p["members"]}


def test_a_refused_new_member_is_left_out_and_later_changes_go_through(site: dict[str, Any]):
    api, lb, pool = site["api"], site["lb"], site["pool"]
    members = f"pools/{pool['id']}/members"
    bad = created(api, lb["id"], members, "member",
                  {"address": REFUSED_ADDRESS, "protocol_port": 80})
    assert status(api, f"{members}/{bad['id']}", "member") == "ERROR"
    assert site["refusals"]
    assert api.wait_lb(lb["id"])["provisioning_status"] == "ACTIVE"
    # Later changes to other objects of the load balancer converge.
    good = created(api, lb["id"], members, "member", {"address": "10.0.0.11", "protocol_port": 80})
    assert status(api, f"{members}/{good['id']}", "member") == "ACTIVE"
    api.put(f"{V2}/pools/{pool['id']}", {"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}})
    api.wait_lb(lb["id"])
    assert status(api, f"pools/{pool['id']}", "pool") == "ACTIVE"
    assert members_served(api) == {"10.0.0.10", "10.0.0.11"}
    assert status(api, f"{members}/{bad['id']}", "member") == "ERROR"
    # Deleting the refused member works like any delete.
    assert api.delete(f"{V2}/{members}/{bad['id']}")[0] == 204
    api.wait_lb(lb["id"])
    assert api.get(f"{V2}/{members}/{bad['id']}")[0] == 404


def test_a_refused_update_keeps_the_last_accepted_version(site: dict[str, Any]) -> None:
    api, lb, hm = site["api"], site["lb"], site["hm"]
    code, _ = api.put(f"{V2}/healthmonitors/{hm['id']}",
                      {"healthmonitor": {"url_path": REFUSED_PATH, "delay": 7}})
    assert code == 200
    api.wait_lb(lb["id"])
    shown = api.get(f"{V2}/healthmonitors/{hm['id']}")[1]["healthmonitor"]
    assert (shown["provisioning_status"], shown["url_path"]) == ("ERROR", REFUSED_PATH)
    created(api, lb["id"], f"pools/{site['pool']['id']}/members", "member",
            {"address": "10.0.0.12", "protocol_port": 80})
    [pool] = served(api)["pools"]
    # The amphora keeps checking as it last accepted: the refused values are not served.
    assert (pool["healthmonitor"]["url_path"], pool["healthmonitor"]["delay"]) == ("/health", 5)
    assert members_served(api) == {"10.0.0.10", "10.0.0.12"}
    # Changed again, to something the data plane takes: ACTIVE and served.
    api.put(f"{V2}/healthmonitors/{hm['id']}", {"healthmonitor": {"url_path": "/ready"}})
    api.wait_lb(lb["id"])
    assert status(api, f"healthmonitors/{hm['id']}", "healthmonitor") == "ACTIVE"
    assert served(api)["pools"][0]["healthmonitor"]["url_path"] == "/ready"


def test_failover_is_not_blocked_by_a_refused_object(site: dict[str, Any]) -> None:
    api, lb = site["api"], site["lb"]
    created(api, lb["id"], f"pools/{site['pool']['id']}/members", "member",
            {"address": REFUSED_ADDRESS, "protocol_port": 80})
    [old] = api.get(f"{AMPS}?loadbalancer_id={lb['id']}")[1]["amphorae"]
    code, _ = api.put(f"{V2}/loadbalancers/{lb['id']}/failover")
    assert code == 202
    deadline = time.monotonic() + 10
    while api.get(f"{AMPS}/{old['id']}")[0] != 404:
        assert time.monotonic() < deadline, "the old amphora was never replaced"
        time.sleep(0.02)
    assert api.wait_lb(lb["id"])["provisioning_status"] == "ACTIVE"
    [new] = api.get(f"{AMPS}?loadbalancer_id={lb['id']}")[1]["amphorae"]
    assert new["id"] != old["id"] and new["status"] == "ALLOCATED"
    assert members_served(api) == {"10.0.0.10"}


def test_a_certificate_that_no_longer_loads_contains_its_listener(api: Any) -> None:
    """The real renderer, certificates from the key manager: the secret of a live
    TERMINATED_HTTPS listener is deleted; the listener goes ERROR and is left out, the HTTP
    listener beside it keeps taking changes; a new certificate brings it back."""
    service = api.service
    real_render(api)
    lb = api.create_lb(name="tls")
    secret = seal_secret(service, lb["project_id"], universal())
    tls = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": f"https://keymanager.example/v1/secrets/{secret}"})
    http = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    pool = created(api, lb["id"], "pools", "pool", {
        "listener_id": http["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    assert f"frontend {tls['id']}" in served_cfg(api)

    with service.engine.begin() as conn:
        conn.execute(delete(t.secret).where(t.secret.c.id == secret))
    member = created(api, lb["id"], f"pools/{pool['id']}/members", "member",
                     {"address": "10.0.0.20", "protocol_port": 80})
    assert status(api, f"pools/{pool['id']}/members/{member['id']}", "member") == "ACTIVE"
    assert status(api, f"listeners/{tls['id']}", "listener") == "ERROR"
    assert api.wait_lb(lb["id"])["provisioning_status"] == "ACTIVE"
    cfg = served_cfg(api)
    assert f"frontend {tls['id']}" not in cfg and "10.0.0.20:80" in cfg

    fresh = seal_secret(service, lb["project_id"], universal())
    code, body = api.put(f"{V2}/listeners/{tls['id']}", {"listener": {
        "default_tls_container_ref": f"https://keymanager.example/v1/secrets/{fresh}"}})
    assert code == 200, body
    api.wait_lb(lb["id"])
    assert status(api, f"listeners/{tls['id']}", "listener") == "ACTIVE"
    assert f"frontend {tls['id']}" in served_cfg(api)


def test_a_key_manager_outage_contains_nothing(api: Any) -> None:
    """Barbican down is nobody's fault: the pass fails (the change goes ERROR, as before), the
    TLS listener is neither marked nor left out, and the next pass after the outage works."""
    service = api.service
    outage = real_render(api)
    lb = api.create_lb(name="outage")
    secret = seal_secret(service, lb["project_id"], universal())
    tls = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": f"https://keymanager.example/v1/secrets/{secret}"})
    outage["outage"] = True
    http = created(api, lb["id"], "listeners", "listener", {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80})
    assert status(api, f"listeners/{http['id']}", "listener") == "ERROR"
    assert status(api, f"listeners/{tls['id']}", "listener") == "ACTIVE"
    assert f"frontend {tls['id']}" in served_cfg(api)
    outage["outage"] = False
    api.put(f"{V2}/listeners/{http['id']}", {"listener": {"name": "again"}})
    api.wait_lb(lb["id"])
    assert status(api, f"listeners/{http['id']}", "listener") == "ACTIVE"
    assert f"frontend {http['id']}" in served_cfg(api)


def served_cfg(api: Any) -> str:
    [bundle] = api.service.drivers.amphora.bundles.values()
    return str(bundle["files"]["haproxy.cfg"])
