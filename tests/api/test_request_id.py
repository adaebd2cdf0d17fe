"""``x-openstack-request-id`` on every response, and the id following the work it started into
the controller's log lines (issue 9 item 11, issue 11 item 5)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest

from lbaas.store.failover import request_failover

REQ = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _rid(api: Any, method: str, path: str, **kw: Any) -> tuple[int, str]:
    resp = api.client.request(method, path, **kw)
    rid = resp.headers.get("x-openstack-request-id")
    assert rid is not None and REQ.match(rid), (method, path, resp.headers)
    return resp.status_code, rid


def test_every_response_carries_a_fresh_request_id(api: Any) -> None:
    lb = api.create_lb(name="rid")
    seen = [
        _rid(api, "GET", "/"),
        _rid(api, "GET", "/v2/lbaas/loadbalancers"),
        _rid(api, "HEAD", f"/v2/lbaas/loadbalancers/{lb['id']}"),
        _rid(api, "GET", "/v2/lbaas/loadbalancers/no-such-id"),
        _rid(api, "GET", "/v2/no/such/path"),
        _rid(api, "DELETE", "/v2/lbaas/providers"),
        _rid(api, "GET", "/v2/lbaas/loadbalancers", headers={"Accept": "text/html"}),
        _rid(api, "POST", "/v2/lbaas/loadbalancers", content=b"{not json",
             headers={"Content-Type": "application/json"}),
        _rid(api, "GET", "/networking/v2.0/networks"),
        _rid(api, "GET", "/networking"),
        _rid(api, "GET", "/key-manager/v1/secrets"),
        _rid(api, "GET", "/key-manager"),
    ]
    assert [s for s, _ in seen] == [200, 200, 200, 404, 404, 405, 406, 400, 200, 200, 200, 300]
    ids = [r for _, r in seen]
    assert len(set(ids)) == len(ids)


def _records(caplog: pytest.LogCaptureFixture, pattern: str, timeout: float = 5.0) \
        -> list[logging.LogRecord]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if re.search(pattern, r.getMessage())]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_controller_lines_carry_the_request_that_started_the_work(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lbaas")
    resp = api.client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet")}})
    assert resp.status_code == 201
    lb_id, create_rid = resp.json()["loadbalancer"]["id"], resp.headers["x-openstack-request-id"]
    api.wait_lb(lb_id)
    [built] = _records(caplog, rf"amphora \S+ \(STANDALONE\) of load balancer {lb_id} built")
    [active] = _records(caplog, rf"load balancer {lb_id} created: ACTIVE")
    assert built.request_id == active.request_id == create_rid

    resp = api.client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}})
    assert resp.status_code == 201
    listener_id, listener_rid = resp.json()["listener"]["id"], \
        resp.headers["x-openstack-request-id"]
    api.wait_lb(lb_id)
    [line] = _records(caplog, rf"listener {listener_id} of load balancer {lb_id} created: ACTIVE")
    assert line.request_id == listener_rid
    # The load balancer was only locked by the listener's change: no line of its own.
    assert not _records(caplog, rf"load balancer {lb_id} updated", timeout=0)

    # A failover the health manager asks for is no request's work: its lines carry no id,
    # not the id of the last change.
    [amp] = api.get(f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")[1]["amphorae"]
    assert request_failover(api.service.engine, amp["id"], lb_id)
    api.service.app.state.notify(lb_id)
    [retired] = _records(caplog, rf"amphora {amp['id']} \(STANDALONE\) of load balancer "
                         rf"{lb_id} retired \(failover\)")
    assert retired.request_id is None

    resp = api.client.delete(f"/v2/lbaas/listeners/{listener_id}")
    assert resp.status_code == 204
    api.wait_lb(lb_id)
    [gone] = _records(caplog, rf"listener {listener_id} of load balancer {lb_id} deleted$")
    assert gone.request_id == resp.headers["x-openstack-request-id"]


def test_a_refused_change_logs_error_with_its_request_id(
        service_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    api = service_factory()
    caplog.set_level(logging.INFO, logger="lbaas")
    lb = api.create_lb()

    def refuse(aggregate: Any, amphora: Any) -> Any:
        if aggregate.listeners:
            raise ValueError("this listener cannot be rendered")
        return render(aggregate, amphora)

    render = api.service.drivers.render
    api.service.drivers.render = refuse
    resp = api.client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})
    listener_id, rid = resp.json()["listener"]["id"], resp.headers["x-openstack-request-id"]
    api.wait_lb(lb["id"])
    [line] = _records(caplog, rf"listener {listener_id} of load balancer {lb['id']} not "
                      "created: ERROR")
    assert line.request_id == rid
    [back] = _records(caplog, rf"load balancer {lb['id']} back to ACTIVE after a failed change")
    assert back.request_id == rid
