"""Session persistence through a VIP of a real ``lbaas serve``: cookies and source addresses.

A client with a cookie jar stays on one backend under HTTP_COOKIE while a client without one is
spread round robin; switching the pool to SOURCE_IP pins every connection from the host to one
backend. Two demo backends on private-subnet; the fixture tears everything down.
"""

from __future__ import annotations

import http.client
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import Plane, skip_reason, start_plane, stop_plane

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BACKENDS = ("10.0.0.10", "10.0.0.11")


@pytest.fixture(scope="module")
def plane() -> Iterator[Plane]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        plane = start_plane()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        plane.start_backends(*BACKENDS)
        yield plane
    finally:
        left = stop_plane(plane)
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def lb(plane: Plane) -> dict[str, Any]:
    public = plane.ok("GET", "/networking/v2.0/subnets?name=public-subnet")["subnets"][0]["id"]
    private = plane.ok("GET", "/networking/v2.0/subnets?name=private-subnet")["subnets"][0]["id"]
    lb = plane.ok("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "sticky", "vip_subnet_id": public}})["loadbalancer"]
    plane.wait_lb(lb["id"], "ACTIVE")
    listener = plane.ok("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})["listener"]
    plane.wait_lb(lb["id"], "ACTIVE")
    pool = plane.ok("POST", "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "HTTP_COOKIE"}}})["pool"]
    plane.wait_lb(lb["id"], "ACTIVE")
    for address in BACKENDS:
        plane.ok("POST", f"/v2/lbaas/pools/{pool['id']}/members", {"member": {
            "address": address, "protocol_port": 80, "subnet_id": private}})
        plane.wait_lb(lb["id"], "ACTIVE")
    return {**lb, "pool_id": pool["id"]}


def get(vip: str, cookie: str | None = None) -> tuple[str, str | None]:
    conn = http.client.HTTPConnection(vip, 80, timeout=5)  # a new connection every time
    try:
        conn.request("GET", "/", headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        body = resp.read().decode().split("\n", 1)[0]  # "backend <address>"
        assert resp.status == 200, (resp.status, body)
        return body, resp.getheader("Set-Cookie")
    finally:
        conn.close()


def test_http_cookie_keeps_a_client_on_one_backend(lb: dict[str, Any]) -> None:
    vip = lb["vip_address"]
    first, set_cookie = get(vip)
    assert set_cookie, "HTTP_COOKIE persistence must set a cookie"
    cookie = set_cookie.split(";", 1)[0]
    with_cookie = Counter(get(vip, cookie)[0] for _ in range(12))
    assert with_cookie == Counter({first: 12}), with_cookie
    without = Counter(get(vip)[0] for _ in range(12))
    assert len(without) == 2, f"clients without the cookie are spread: {without}"


def test_source_ip_pins_every_connection_from_one_address(plane: Plane,
                                                          lb: dict[str, Any]) -> None:
    plane.ok("PUT", f"/v2/lbaas/pools/{lb['pool_id']}", {"pool": {
        "session_persistence": {"type": "SOURCE_IP"}}})
    plane.wait_lb(lb["id"], "ACTIVE")
    seen = Counter(get(lb["vip_address"])[0] for _ in range(12))
    assert len(seen) == 1 and sum(seen.values()) == 12, seen
    assert next(iter(seen)) in {f"backend {a}" for a in BACKENDS}
