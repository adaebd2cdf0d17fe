"""The load balancer list at 1,000 load balancers (fake drivers): first draw, search, paging and
the periodic refresh stay fast. Prints the measured times (``pytest -s`` shows them)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect
from servers import Server, fake_settings

from conftest import open_dashboard

pytestmark = pytest.mark.slow
COUNT = 1000
LEAN = ("/v2/lbaas/loadbalancers?fields=id&fields=name&fields=vip_address"
        "&fields=provisioning_status&fields=operating_status&fields=provider&fields=flavor_id"
        "&fields=created_at&limit=1000")
BUDGET = {"first draw": 3.0, "search": 0.5, "next page": 0.5,
          "refresh (fetch, sort, draw)": 1.0}


@pytest.fixture(scope="module")
def big_server() -> Iterator[Server]:
    server = Server(fake_settings(vip_hosts=4000)).start()
    try:
        subnet = server.ok("GET", "/networking/v2.0/subnets?name=public-subnet")["subnets"][0]

        def make(i: int) -> None:
            server.ok("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
                "name": f"lb-{i:04d}", "vip_subnet_id": subnet["id"]}})

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(make, range(COUNT)))
        yield server
    finally:
        server.close()


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def test_list_stays_fast_at_1000_load_balancers(
        page: Any, big_server: Server, shot: Callable[..., None]) -> None:
    api = min(timed(lambda: big_server.ok("GET", LEAN)) for _ in range(5))
    summary = page.locator("#lb-summary")
    rows = page.locator("#lb-table tbody tr")
    figures = {"API lean list (1000 rows)": api}
    figures["first draw"] = timed(lambda: (
        open_dashboard(page, big_server),
        expect(summary).to_have_text(re.compile(rf"^{COUNT} load balancers"), timeout=10_000)))
    assert rows.count() == 25
    search = page.get_by_label("Search")
    figures["search"] = timed(lambda: (search.fill("lb-0777"), expect(rows).to_have_count(1)))
    expect(rows.first).to_contain_text("lb-0777")
    figures["search, 100 matches"] = timed(lambda: (
        search.fill("lb-07"), expect(summary).to_contain_text("100 of 1000")))
    search.fill("")
    expect(summary).to_contain_text("showing 1–25")
    figures["next page"] = timed(lambda: (
        page.get_by_role("button", name="Next").click(),
        expect(summary).to_contain_text("showing 26–50")))
    # the periodic refresh (every 5 s): fetch, sort and redraw, as the page measures it
    expect(page.locator("#lb-table")).to_be_visible()
    page.wait_for_timeout(5500)
    refreshes = page.evaluate(
        "performance.getEntriesByName('lbaas:list-refresh').map((e) => e.duration)")
    assert len(refreshes) >= 2, refreshes
    figures["refresh (fetch, sort, draw)"] = max(refreshes[1:]) / 1000
    shot(page, "loadbalancers-1000")
    print("\n".join(f"dashboard at {COUNT}: {k}: {v * 1000:.0f} ms" for k, v in figures.items()))
    for key, budget in BUDGET.items():
        assert figures[key] < budget, f"{key} took {figures[key]:.2f}s (budget {budget}s)"
