"""Property: whatever the API accepts renders, and HAProxy (and nft) accept the result.

Hypothesis draws listeners, pools, members, health monitors, L7 policies with rules and TLS
options (certificates from the key manager) as request bodies: valid shapes carrying plausible
and hostile values (tests/render/api_strategies.py). They go through the API with the fake
drivers, then some are updated with more drawn values. Whatever was accepted is rendered as the
controller renders it and put to ``haproxy -c`` (``nft -c`` for UDP listeners when root). An
accepted object that render refuses, or a bundle HAProxy refuses, is a counterexample: the API
and the data plane disagree. No request may answer 5xx either. Each example's load balancer is
deleted afterwards (VIP addresses are few). Examples are bounded (``LBAAS_PROPERTY_EXAMPLES``,
default 40) to keep the run under a minute.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from api_render import HAPROXY, check_bundle, render_from_api
from api_strategies import listener, member, monitor, policy, pool
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tls_material import issue, seal_secret, universal

V2 = "/v2/lbaas"
EXAMPLES = int(os.environ.get("LBAAS_PROPERTY_EXAMPLES", "40"))

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")


class Session:
    """One example's requests: answers checked for 5xx, accepted ones counted by kind."""

    def __init__(self, api: Any, lb_id: str, tally: Counter[str]) -> None:
        self.api = api
        self.lb_id = lb_id
        self.tally = tally

    def _record(self, what: str, code: int, body: Any, sent: dict[str, Any]) -> bool:
        assert code < 500, f"{what} {sent!r} -> {code} {body!r}"
        self.tally[f"{what.split()[0]} {code}"] += 1
        if code in (200, 201):
            note(f"accepted {what}: {sent!r}")
            self.api.wait_lb(self.lb_id)
            return True
        return False

    def create(self, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
        code, data = self.api.post(f"{V2}/{path}", {kind: body})
        return dict(data[kind]) if self._record(f"POST {path}", code, data, body) else None

    def update(self, path: str, kind: str, body: dict[str, Any]) -> None:
        if body:
            code, data = self.api.put(f"{V2}/{path}", {kind: body})
            self._record(f"PUT {path}", code, data, body)


def certificate_refs(api: Any, project_id: str) -> list[str]:
    """A certificate usable as server, CA and CRL, two named server certificates, then more
    server certificates for long SNI lists."""
    payloads = [universal()]
    for n in range(2):
        leaf = issue(f"site{n}.example.com", names=(f"site{n}.example.com",))
        payloads.append(leaf.cert_pem + leaf.key_pem)
    payloads += [universal()] * 32
    return [f"https://keymanager.example/v1/secrets/{seal_secret(api.service, project_id, p)}"
            for p in payloads]


def partial(draw: Any, body: dict[str, Any], fixed: tuple[str, ...]) -> dict[str, Any]:
    """A drawn subset of ``body``'s keys, as an update body (``fixed`` keys left out)."""
    keys = sorted(k for k in body if k not in fixed)
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=3)) if keys else []
    return {k: body[k] for k in chosen}


def build(draw: Any, s: Session, lb_id: str, refs: list[str]) -> None:
    listeners = []
    for port in range(draw(st.integers(1, 2))):
        made = s.create("listeners", "listener",
                        {"loadbalancer_id": lb_id, **draw(listener(80 + port, refs))})
        if made is not None:
            listeners.append(made)
    pools = []
    for _ in range(draw(st.integers(1, 2))):
        free = [li for li in listeners if not li["default_pool_id"]
                and li["protocol"] != "PROMETHEUS"]
        owner = draw(st.sampled_from(free)) if free and draw(st.booleans()) else None
        body = draw(pool(owner["protocol"] if owner else None, refs))
        parent = {"listener_id": owner["id"]} if owner else {"loadbalancer_id": lb_id}
        made = s.create("pools", "pool", {**parent, **body})
        if made is None:
            continue
        pools.append(made)
        if owner is not None:
            owner["default_pool_id"] = made["id"]
        for m in range(draw(st.integers(0, 2))):
            s.create(f"pools/{made['id']}/members", "member",
                     draw(member(len(pools) * 10 + m)))
        if draw(st.booleans()):
            hm = s.create("healthmonitors", "healthmonitor",
                          {"pool_id": made["id"], **draw(monitor(made["protocol"]))})
            if hm is not None:
                again = draw(monitor(made["protocol"], hm["type"]))
                s.update(f"healthmonitors/{hm['id']}", "healthmonitor",
                         partial(draw, again, ("type",)))
        again = draw(pool(owner["protocol"] if owner else None, refs))
        if again["protocol"] == made["protocol"]:
            s.update(f"pools/{made['id']}", "pool", partial(draw, again, ("protocol",)))
    for li in listeners:
        if li["protocol"] in ("HTTP", "TERMINATED_HTTPS"):
            ids = [p["id"] for p in pools if p["protocol"] in ("HTTP", "PROXY", "PROXYV2")]
            for _ in range(draw(st.integers(0, 2))):
                s.create("l7policies", "l7policy", {"listener_id": li["id"],
                                                    **draw(policy(ids))})
        again = draw(listener(li["protocol_port"], refs, li["protocol"]))
        s.update(f"listeners/{li['id']}", "listener",
                 partial(draw, again, ("protocol", "protocol_port")))


def test_objects_the_api_accepts_render_and_pass_haproxy(api: Any, tmp_path: Path) -> None:
    project = api.create_lb(name="refs")["project_id"]
    refs = certificate_refs(api, project)
    tally: Counter[str] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def example(data: Any) -> None:
        lb = api.create_lb(name="property", project_id=project)
        try:
            build(data.draw, Session(api, lb["id"], tally), lb["id"], refs)
            bundle = render_from_api(api, lb["id"])  # a RenderError is a counterexample
            complaints = check_bundle(bundle, tmp_path / "bundle")
            assert complaints == "", f"{complaints}\n{bundle.files['haproxy.cfg']}"
        finally:
            code, body = api.delete(f"{V2}/loadbalancers/{lb['id']}?cascade=true")
            assert code == 204, body
            api.wait_lb(lb["id"], "DELETED")

    example()
    print(f"\nrequests by method and answer: {dict(sorted(tally.items()))}")
    assert tally["POST 201"] >= EXAMPLES * 2, tally  # the examples did build something
