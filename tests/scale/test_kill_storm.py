"""Kill storm: 200 creates, updates and deletes through both APIs while a random role process is
SIGKILLed every 2 s (each role at least twice) and started again a second later, as systemd's
``Restart=always`` would. Thirty seconds after the storm nothing is PENDING_*, every load
balancer is ACTIVE or ERROR with its reason in a worker's log, no amphora namespace or process
is orphaned, and the load balancers on the real data plane served their VIPs throughout."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scale_dataplane import (
    VipProbe,
    assert_no_orphans,
    build_real_lb,
    start_backend,
    stop_backends,
)
from scale_servers import PrivateRabbit, wait_for
from scale_topology import HAS_CONTROLLER_LIST, ROLES, Topology
from test_dataplane_roles import _skip_reason

OPERATIONS = 200
KILL_EVERY = 2.0
SETTLE = 30.0


@pytest.fixture
def storm_site(database: str, rabbit: PrivateRabbit) -> Iterator[Topology]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    topo = Topology(database, rabbit.url, data_plane=True)
    try:
        topo.start_all()
        yield topo
    finally:
        topo.close()


class Operations:
    """Random changes on no-op load balancers, member weights on the real ones."""

    def __init__(self, topo: Topology, real: list[dict[str, Any]]) -> None:
        self.topo = topo
        self.real = real
        self.noop: list[str] = []
        self.listeners: dict[str, list[str]] = {}
        self.done = 0
        self.kinds: dict[str, int] = {}
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.topo.request(method, path, body)

    def create_lb(self) -> int:
        code, body = self.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
            "name": f"n{random.randint(0, 10**6)}", "provider": "noop",
            "vip_subnet_id": self.topo.subnet_id("pub")}})
        if code == 201:
            with self._lock:
                self.noop.append(body["loadbalancer"]["id"])
        return code

    def rename(self) -> int:
        lb_id = random.choice(self.noop + [r["id"] for r in self.real])
        return self.call("PUT", f"/v2/lbaas/loadbalancers/{lb_id}", {"loadbalancer": {
            "description": f"d{random.randint(0, 10**6)}"}})[0]

    def add_listener(self) -> int:
        lb_id = random.choice(self.noop)
        code, body = self.call("POST", "/v2/lbaas/listeners", {"listener": {
            "loadbalancer_id": lb_id, "protocol": "HTTP",
            "protocol_port": random.randint(1000, 60000)}})
        if code == 201:
            with self._lock:
                self.listeners.setdefault(lb_id, []).append(body["listener"]["id"])
        return code

    def add_pool(self) -> int:
        candidates = [lb for lb in self.noop if self.listeners.get(lb)]
        if not candidates:
            return self.add_listener()
        listener = random.choice(self.listeners[random.choice(candidates)])
        return self.call("POST", "/v2/lbaas/pools", {"pool": {
            "listener_id": listener, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})[0]

    def weigh_member(self) -> int:
        lb = random.choice(self.real)
        member = random.choice(lb["members"])
        return self.call("PUT", f"/v2/lbaas/pools/{lb['pool']}/members/{member}", {"member": {
            "weight": random.randint(1, 10)}})[0]

    def delete_lb(self) -> int:
        if len(self.noop) < 5:
            return self.create_lb()
        with self._lock:
            lb_id = self.noop.pop(random.randrange(len(self.noop)))
            self.listeners.pop(lb_id, None)
        return self.call("DELETE", f"/v2/lbaas/loadbalancers/{lb_id}?cascade=true")[0]

    def run(self, stop: threading.Event) -> None:
        ops = [self.create_lb] * 3 + [self.rename] * 3 + [self.add_listener] * 2 + \
              [self.add_pool] * 2 + [self.weigh_member] * 2 + [self.delete_lb]
        while not stop.is_set():
            with self._lock:
                if self.done >= OPERATIONS:
                    return
            op = random.choice(ops)
            code = op()
            if 200 <= code < 300:
                with self._lock:
                    self.done += 1
                    self.kinds[op.__name__] = self.kinds.get(op.__name__, 0) + 1
            else:  # 409 while a load balancer settles; try something else
                assert code in (404, 409), (op.__name__, code)
            time.sleep(random.uniform(0.05, 0.3))


def kill_schedule() -> list[str]:
    first = [role for role in ROLES for _ in range(2)]
    random.shuffle(first)
    return first


def test_kill_storm(storm_site: Topology) -> None:
    topo = storm_site
    priv = topo.prefix["priv"]
    backends = [start_backend(topo, f"{priv}.{n}") for n in (20, 21)]
    try:
        real = [build_real_lb(topo, f"real{n}", [f"{priv}.20", f"{priv}.21"])
                for n in range(2)]
        ops = Operations(topo, real)
        for _ in range(5):
            assert ops.create_lb() == 201
        stop = threading.Event()
        clients = [threading.Thread(target=ops.run, args=(stop,)) for _ in range(4)]
        schedule = kill_schedule()
        timers = []
        with VipProbe([lb["vip"] for lb in real]) as probe:
            for client in clients:
                client.start()
            try:
                while ops.done < OPERATIONS or schedule:
                    role = schedule.pop() if schedule else random.choice(list(ROLES))
                    i = random.randrange(ROLES[role])
                    wait_for(lambda r=role, k=i: topo.procs[(r, k)].poll() is None, 30,
                             f"{role}-{i} back")
                    topo.kill(role, i)
                    timers.append(topo.restart_later(role, i))
                    time.sleep(KILL_EVERY)
                    assert all(c.is_alive() for c in clients) or ops.done >= OPERATIONS, \
                        "an operation failed (see the thread's traceback)"
            finally:
                stop.set()
                for client in clients:
                    client.join(60)
                for timer in timers:
                    timer.join()
            storm_ended = time.monotonic()
            for (role, i) in topo.procs:
                wait_for(lambda r=role, k=i: topo.ready(r, k), 60, f"{role}-{i} ready")
            topo.wait_settled(SETTLE - (time.monotonic() - storm_ended))
        killed = {role: sum(1 for _, r, _ in topo.kills if r == role) for role in ROLES}
        assert all(n >= 2 for n in killed.values()), killed
        assert ops.done >= OPERATIONS, ops.kinds
        logs = topo.all_logs()
        for lb in topo.load_balancers():
            assert lb.provisioning_status in ("ACTIVE", "ERROR"), lb
            if lb.provisioning_status == "ERROR":
                assert f"reconcile of load balancer {lb.id} failed" in logs, lb.id
        assert_no_orphans(topo)
        assert probe.ok > 0
        if HAS_CONTROLLER_LIST:  # agents reach a live health manager whichever one died
            assert not probe.failures, probe.failures[:10]
        else:
            print(f"VIP probe failures without controller_ip_port_list: {probe.failures[:5]}")
        print(f"storm: {ops.kinds}, kills {killed}, VIP answers {probe.ok}")
    finally:
        stop_backends(backends)
