"""The database restarts under the four roles: the test's own PostgreSQL (initdb in a temporary
directory, its own port) is stopped for 10 s while changes keep coming through both APIs.
Every change an API accepted is applied afterwards, and no process had to be restarted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from scale_servers import PrivatePostgres, PrivateRabbit
from scale_topology import Topology
from test_roles import create_lb, wait_active


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_database_restart_loses_no_change_and_needs_no_restart(
        postgres: PrivatePostgres, rabbit: PrivateRabbit) -> None:
    topo = Topology(postgres.create_database(), rabbit.url, data_plane=False)
    try:
        topo.start_all()
        lb_ids = [create_lb(topo, f"db-{n}") for n in range(6)]
        for lb_id in lb_ids:
            wait_active(topo, lb_id, 20)
        pids = topo.pids()
        accepted: dict[str, str] = {}
        failed: list[tuple[int, object]] = []  # 5xx answers, while the database is away
        stop = threading.Event()

        def rename() -> None:
            round_ = 0
            while not stop.is_set():
                for n, lb_id in enumerate(lb_ids):
                    name = f"r{round_}-{n}"
                    code, body = topo.request("PUT", f"/v2/lbaas/loadbalancers/{lb_id}",
                                              {"loadbalancer": {"name": name}}, api=n % 2)
                    if code == 200:
                        accepted[lb_id] = name
                    elif code >= 500:  # (409 while the previous change settles)
                        failed.append((code, body))
                    time.sleep(0.05)
                round_ += 1

        worker = threading.Thread(target=rename)
        worker.start()
        try:
            time.sleep(3)
            postgres.stop()
            time.sleep(10)
            postgres.start()
            time.sleep(8)
        finally:
            stop.set()
            worker.join(60)
        assert failed, "the outage was never seen by the API"
        # Octavia's error format, and "unavailable" rather than "broken"
        assert all(code == 503 and isinstance(body, dict) and body.get("faultcode") == "Server"
                   and "database" in body.get("faultstring", "") for code, body in failed), \
            failed[:3]
        for lb_id, name in accepted.items():  # the lease of a pass cut short runs out in 10 s
            wait_active(topo, lb_id, 30, name)
        assert not topo.pending()
        started = time.monotonic()
        wait_active(topo, create_lb(topo, "after"), 10)
        assert time.monotonic() - started < 3, "hints do not flow after the restart"
        assert topo.pids() == pids and topo.alive(), "a process was restarted or died"
    finally:
        topo.close()
