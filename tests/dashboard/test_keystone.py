"""The dashboard in ``keystone`` mode against a real Keystone (tests/keystone's fixtures,
loaded from there): the sign-in form gets a token from Keystone, the token stays in an
HttpOnly cookie, a tenant sees only its own load balancers, and signing out revokes it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from servers import Server, fake_settings

from conftest import open_dashboard

_spec = importlib.util.spec_from_file_location(
    "keystone_fixtures", Path(__file__).parents[1] / "keystone" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
keystone = _fixtures.keystone  # the session's real Keystone (reused, not copied)
tokens = _fixtures.tokens
PASSWORD = _fixtures.PASSWORD

pytestmark = pytest.mark.slow
LBS = "/v2/lbaas/loadbalancers"


@pytest.fixture(scope="module")
def ks_server(keystone: Any) -> Iterator[Server]:
    server = Server(fake_settings(
        "[api]\nauth_strategy = 'keystone'\n"
        f"[keystone]\nwww_authenticate_uri = '{keystone.url}'\nauth_url = '{keystone.url}'\n"
        f"username = 'octavia'\npassword = '{PASSWORD}'\nproject_name = 'service'\n")).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def two_tenants(ks_server: Server, tokens: Any) -> dict[str, str]:
    """One load balancer made by a member of project A, one by a member of project B."""
    subnet = ks_server.ok("GET", "/networking/v2.0/subnets?name=public-subnet",
                          token=tokens["member-a"])["subnets"][0]["id"]
    made = {}
    for user, name in (("member-a", "lb-of-a"), ("member-b", "lb-of-b")):
        lb = ks_server.ok("POST", LBS, {"loadbalancer": {"name": name, "vip_subnet_id": subnet}},
                          token=tokens[user])
        made[name] = lb["loadbalancer"]["id"]
    return made


def sign_in(page: Any, user: str, project: str, password: str = PASSWORD) -> None:
    form = page.locator("form.signin")
    form.locator("[name=username]").fill(user)
    form.locator("[name=password]").fill(password)
    form.locator("[name=project]").fill(project)
    form.get_by_role("button", name="Sign In").click()


def listed(page: Any) -> set[str]:
    rows = page.locator("#lb-table tbody tr[data-id]")
    return {rows.nth(i).get_attribute("data-id") for i in range(rows.count())}


def test_a_tenant_sees_only_its_own_load_balancers(
        page: Any, ks_server: Server, two_tenants: dict[str, str], keystone: Any,
        shot: Callable[..., None]) -> None:
    page.goto(f"{ks_server.url}/dashboard/")
    expect(page.locator("main h1")).to_have_text("Sign in")
    assert page.locator("#nav").is_hidden()
    shot(page, "sign-in")
    sign_in(page, "member-a", "A", password="wrong")
    expect(page.get_by_role("alert")).to_contain_text("not right")
    sign_in(page, "member-a", "A")
    expect(page.locator("#who")).to_contain_text("member-a · A")
    expect(page.locator("#lb-summary")).to_contain_text("1 load balancers")
    assert listed(page) == {two_tenants["lb-of-a"]}
    assert page.get_by_role("link", name="Amphorae").is_hidden()  # not an admin
    page.get_by_role("link", name="lb-of-a").click()
    expect(page.locator(".map .node[data-kind=loadbalancer]")).to_have_attribute(
        "data-provisioning", "ACTIVE")
    # the other project's load balancer, by its address: the API's 403, shown as it is
    page.goto(f"{ks_server.url}/dashboard/#/loadbalancers/{two_tenants['lb-of-b']}")
    expect(page.get_by_role("alert")).to_have_text(
        "Policy does not allow this request to be performed.")
    # the token never reaches scripts, and signing out revokes it in Keystone
    cookie = next(c for c in page.context.cookies() if c["name"] == "lbaas_dashboard_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert "lbaas_dashboard_token" not in page.evaluate("document.cookie")
    assert ks_server.call("GET", LBS, token=cookie["value"])[0] == 200
    page.get_by_role("button", name="Sign Out").click()
    expect(page.locator("main h1")).to_have_text("Sign in")
    with keystone.admin_client() as kc:  # (the API may still hold it in its token cache)
        assert kc.get("/auth/tokens", headers={"X-Subject-Token": cookie["value"]}
                      ).status_code == 404
    assert not [c for c in page.context.cookies() if c["name"] == "lbaas_dashboard_token"]
    sign_in(page, "member-b", "B")
    expect(page.locator("#lb-summary")).to_contain_text("1 load balancers")
    assert listed(page) == {two_tenants["lb-of-b"]}


def test_an_admin_sees_every_project_and_the_amphorae(
        page: Any, ks_server: Server, two_tenants: dict[str, str]) -> None:
    open_dashboard_signed_in(page, ks_server, "admin-a", "A")
    expect(page.locator("#lb-summary")).to_contain_text("2 load balancers")
    assert listed(page) == set(two_tenants.values())
    page.get_by_role("link", name="Amphorae").click()
    expect(page.locator("main table tbody tr[data-id]")).to_have_count(2)


def test_without_a_session_the_api_says_401(ks_server: Server) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{ks_server.url}/dashboard/api{LBS}",
                                 headers={"X-Requested-By": "lbaas-dashboard"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401


def open_dashboard_signed_in(page: Any, server: Server, user: str, project: str) -> None:
    page.goto(f"{server.url}/dashboard/")
    sign_in(page, user, project)
    open_dashboard(page, server)
