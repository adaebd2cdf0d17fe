"""The four roles as processes on a shared database and RabbitMQ, with the fake drivers:
work spread over the workers, housekeeping jobs once per period across instances, and a
20-second broker outage that loses no change and needs no restart."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from scale_servers import PrivateRabbit
from scale_topology import Topology


@pytest.fixture
def site(database: str, rabbit: PrivateRabbit) -> Iterator[Topology]:
    topo = Topology(database, rabbit.url, data_plane=False)
    try:
        topo.start_all()
        yield topo
    finally:
        topo.close()


def create_lb(topo: Topology, name: str, api: int | None = None) -> str:
    code, body = topo.request("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": name, "vip_subnet_id": topo.subnet_id("pub")}}, api=api)
    assert code == 201, body
    return str(body["loadbalancer"]["id"])


def wait_active(topo: Topology, lb_id: str, timeout: float, name: str | None = None) -> float:
    """Seconds until the load balancer is ACTIVE (and carries ``name``), or fail."""
    started = time.monotonic()
    while True:
        code, body = topo.request("GET", f"/v2/lbaas/loadbalancers/{lb_id}")
        lb = body["loadbalancer"] if code == 200 else {}
        if lb.get("provisioning_status") == "ACTIVE" and (name is None or lb["name"] == name):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{lb_id}: {body}"
        time.sleep(0.05)


def creates_per_worker(topo: Topology) -> list[int]:
    """How many pending load balancers each worker brought to ACTIVE (from its last stats)."""
    counts = []
    for i in range(topo.counts["worker"]):
        found = re.findall(r"(\d+) settled a change", topo.log("worker", i))
        counts.append(int(found[-1]) if found else 0)
    return counts


def test_three_workers_share_300_creates(site: Topology) -> None:
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda n: create_lb(site, f"share-{n}", api=n % 2), range(300)))
    deadline = time.monotonic() + 120
    while any(lb.provisioning_status != "ACTIVE" for lb in site.load_balancers()):
        assert time.monotonic() < deadline, site.pending()[:5]
        time.sleep(0.5)
    assert len(site.load_balancers()) == len(ids) == 300
    site.stop_all()  # each worker logs its pass count as it stops
    counts = creates_per_worker(site)
    assert sum(counts) == 300, counts
    assert max(counts) <= 150, f"one worker took more than half: {counts}"
    assert min(counts) > 0, counts


def test_broker_outage_loses_no_change_and_needs_no_restart(site: Topology,
                                                             rabbit: PrivateRabbit) -> None:
    lb_ids = [create_lb(site, f"outage-{n}") for n in range(6)]
    for lb_id in lb_ids:
        wait_active(site, lb_id, 10)
    pids = site.pids()
    wanted: dict[str, str] = {}
    during: list[float] = []
    outage = threading.Event()

    def change(round_: int, n: int) -> None:
        lb_id = lb_ids[n]
        name = f"r{round_}-{n}"
        code, _ = site.request("PUT", f"/v2/lbaas/loadbalancers/{lb_id}",
                               {"loadbalancer": {"name": name}}, api=n % 2)
        assert code == 200
        wanted[lb_id] = name
        took = wait_active(site, lb_id, 20, name)
        if outage.is_set():
            during.append(took)

    change(0, 0)
    rabbit.stop()
    outage.set()
    stopped_at = time.monotonic()
    round_ = 1
    with ThreadPoolExecutor(6) as pool:
        while time.monotonic() - stopped_at < 20:
            list(pool.map(lambda n, r=round_: change(r, n), range(6)))
            created = create_lb(site, f"during-{round_}")
            lb_ids.append(created)
            wait_active(site, created, 20)
            round_ += 1
    rabbit.start()
    outage.clear()
    # every change made while the broker was away converged through the resync scan alone
    assert during and max(during) <= 5.0 + 2.0, sorted(during)[-5:]
    # once the broker is back, hints flow again: changes settle well within a scan interval
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        quick = []
        for n in range(6):
            started = time.monotonic()
            change(1000 + n, n)
            quick.append(time.monotonic() - started)
        if max(quick) < 1.5:
            break
    else:
        raise AssertionError(f"changes still slow after the broker returned: {quick}")
    for lb_id, name in wanted.items():
        wait_active(site, lb_id, 1, name)
    assert not site.pending()
    assert site.pids() == pids and site.alive(), "a process was restarted or died"
    for role, n in site.counts.items():
        for i in range(n):
            connects = site.log(role, i).count("message bus amqp://")
            assert connects >= 2, f"{role}-{i} did not reconnect by itself"


@pytest.fixture
def housekeepers(database: str, rabbit: PrivateRabbit) -> Iterator[Topology]:
    topo = Topology(database, rabbit.url, data_plane=False,
                    counts={"api": 1, "worker": 1, "housekeeping": 3},
                    extra_toml="[housekeeping]\npurge_interval = 1.0\n"
                               "full_resync_interval = 1.0\n")
    try:
        topo.start_all()
        yield topo
    finally:
        topo.close()


JOB_DONE = r"^(\S+ \S+) INFO \S+: housekeeping job {} done in ([\d.]+) s"


def job_runs(topo: Topology, job: str) -> list[tuple[datetime, int]]:
    """When each run of ``job`` started (its "done" line less its duration), and where."""
    runs = []
    for i in range(topo.counts["housekeeping"]):
        for stamp, took in re.findall(JOB_DONE.format(re.escape(job)),
                                      topo.log("housekeeping", i), re.M):
            done = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            runs.append((done - timedelta(seconds=float(took)), i))
    return sorted(runs)


def test_each_housekeeping_job_runs_once_per_period_across_instances(
        housekeepers: Topology) -> None:
    create_lb(housekeepers, "hk")
    jobs = ("purge", "full-resync")
    deadline = time.monotonic() + 20
    while not all(len(job_runs(housekeepers, job)) >= 3 for job in jobs):
        assert time.monotonic() < deadline, {job: job_runs(housekeepers, job) for job in jobs}
        time.sleep(0.1)
    # Kill the process that runs the jobs (whoever polls first after a job is due wins its
    # lease, so one process may run every period): the others must take over. Right after
    # its purge run ends, so purge's lease is idle; a full resync killed mid-run stays
    # leased until the lease time (10 s) and runs again after it.
    runner = job_runs(housekeepers, "purge")[-1][1]
    seen = len(job_runs(housekeepers, "purge"))
    while len(job_runs(housekeepers, "purge")) == seen:
        assert time.monotonic() < deadline + 10
        time.sleep(0.01)
    killed = {runner, job_runs(housekeepers, "full-resync")[-1][1]}
    kill_time = datetime.now()
    for i in killed:
        housekeepers.kill("housekeeping", i)
    time.sleep(12)
    for job in jobs:
        runs = job_runs(housekeepers, job)
        gaps = [(b - a).total_seconds() for (a, _), (b, _) in itertools.pairwise(runs)]
        assert min(gaps) >= 0.95, f"{job} ran twice in one period: {runs}"
        after = [i for started, i in runs if started > kill_time]
        assert after and not killed & set(after), (job, killed, runs)
    purge_after = [r for r in job_runs(housekeepers, "purge") if r[0] > kill_time]
    assert len(purge_after) >= 9, f"purge not taken over at once: {purge_after}"
