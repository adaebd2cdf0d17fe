"""The dashboard's pages and actions in Chromium against ``lbaas serve`` with the fake drivers:
the wizard (and the API's message beside the field), a load balancer's page and its children's,
edits, member enable/disable, a TERMINATED_HTTPS listener with a secret picked from the key
manager, floating IPs, amphora failover, quotas, cascade delete, keyboard and phone use."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect
from servers import Server
from wizard_steps import Wizard, create, fill

from conftest import PHONE, open_dashboard

LBS = "/v2/lbaas/loadbalancers"


def subnet(server: Server, name: str) -> str:
    subnets = server.ok("GET", f"/networking/v2.0/subnets?name={name}")["subnets"]
    return str(subnets[0]["id"])


def member_address(server: Server, n: int) -> str:
    """Host ``n`` of the private subnet, whatever range it has."""
    cidr = server.ok("GET", "/networking/v2.0/subnets?name=private-subnet")["subnets"][0]["cidr"]
    return str(ipaddress.ip_network(cidr)[n])


def wait_active(server: Server, lb_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        lb = server.ok("GET", f"{LBS}/{lb_id}")["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return dict(lb)
        assert time.monotonic() < deadline, lb
        time.sleep(0.1)


def graph_lb(server: Server, name: str, members: int = 2,
             vip_subnet: str = "public-subnet") -> dict[str, Any]:
    body = {"loadbalancer": {"name": name, "vip_subnet_id": subnet(server, vip_subnet),
                             "listeners": [{"name": f"{name}-http", "protocol": "HTTP",
                                            "protocol_port": 80, "default_pool": {
                                                "name": f"{name}-pool", "protocol": "HTTP",
                                                "lb_algorithm": "ROUND_ROBIN",
                                                "healthmonitor": {"type": "HTTP", "delay": 5,
                                                                  "timeout": 5, "max_retries": 3},
                                                "members": [{
                                                    "address": member_address(server, 10 + i),
                                                    "protocol_port": 8080}
                                                    for i in range(members)]}}]}}
    lb = server.ok("POST", LBS, body)["loadbalancer"]
    return wait_active(server, lb["id"])


def test_wizard_puts_the_api_message_beside_its_field_then_creates(
        page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    open_dashboard(page, fake_server)
    private = subnet(fake_server, "private-subnet")
    first, second = member_address(fake_server, 10), member_address(fake_server, 11)
    wizard = Wizard(name="web", vip_subnet_id=subnet(fake_server, "public-subnet"),
                    member_subnet_id=private,
                    members=[(first, 8080, 1), (second, 8080, 300)])
    fill(page, wizard, shot)
    # What the API itself says about that weight:
    status, expected = fake_server.call("POST", LBS, {"loadbalancer": {
        "vip_subnet_id": wizard.vip_subnet_id, "pools": [{
            "name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": second, "protocol_port": 8080, "weight": 300}]}]}})
    assert status == 400
    page.get_by_role("button", name="Create Load Balancer").click()
    members_step = page.locator("#step-members")
    members_step.wait_for(state="visible")
    weight = members_step.locator(".member-row").nth(1).locator("[name=weight]")
    error = members_step.locator(".member-row").nth(1).locator("[data-field=weight] .field-error")
    assert error.inner_text() == expected["faultstring"]
    assert weight.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "weight"
    shot(page, "wizard-error-beside-field")
    assert fake_server.ok("GET", LBS)["loadbalancers"] == []  # nothing half-made
    weight.fill("2")
    page.get_by_role("button", name="Next").click()
    lb_id = create(page)
    lb = wait_active(fake_server, lb_id)
    assert lb["name"] == "web"
    page.locator(".map .node[data-kind=member]").nth(1).wait_for()
    nodes = page.locator(".map .node")
    kinds = [nodes.nth(i).get_attribute("data-kind") for i in range(nodes.count())]
    assert kinds.count("listener") == 1 and kinds.count("pool") == 1
    assert kinds.count("member") == 2
    pools = fake_server.ok("GET", f"/v2/lbaas/pools?loadbalancer_id={lb_id}")["pools"]
    members = fake_server.ok("GET", f"/v2/lbaas/pools/{pools[0]['id']}/members")["members"]
    assert sorted((m["address"], m["weight"], m["subnet_id"]) for m in members) == [
        (first, 1, private), (second, 2, private)]
    monitor = fake_server.ok("GET", f"/v2/lbaas/healthmonitors/{pools[0]['healthmonitor_id']}")
    assert monitor["healthmonitor"]["url_path"] == "/healthcheck"
    page.locator(".map .node[data-kind=loadbalancer][data-provisioning=ACTIVE]").wait_for()


def test_next_needs_the_required_fields(page: Any, fake_server: Server) -> None:
    open_dashboard(page, fake_server, "#/loadbalancers/new")
    page.get_by_role("button", name="Next").click()
    error = page.locator("#step-loadbalancer [data-field=vip_subnet_id] .field-error")
    assert error.inner_text() == "This field is required."
    assert page.locator("#step-listener").is_hidden()


def test_list_search_pagination_and_cascade_delete(
        page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    for lb in fake_server.ok("GET", LBS)["loadbalancers"]:
        fake_server.ok("DELETE", f"{LBS}/{lb['id']}?cascade=true")
    made = [graph_lb(fake_server, f"shop-{i:02d}", members=1) for i in range(27)]
    open_dashboard(page, fake_server)
    summary = page.locator("#lb-summary")
    expect(summary).to_have_text(re.compile(r"^27 load balancers"))
    assert page.locator("#lb-table tbody tr").count() == 25
    shot(page, "loadbalancers")
    page.get_by_role("button", name="Next").click()
    assert page.locator("#lb-table tbody tr").count() == 2
    page.get_by_label("Search").fill("shop-13")
    assert page.locator("#lb-table tbody tr").count() == 1
    assert "1 of 27" in summary.inner_text()
    page.get_by_label("Search").fill(made[5]["vip_address"])
    assert page.locator("#lb-table tbody tr").first.get_attribute("data-id") == made[5]["id"]
    # delete one with its whole tree, after a confirmation
    page.get_by_label("Search").fill("shop-00")
    row = page.locator(f"#lb-table tr[data-id='{made[0]['id']}']")
    row.get_by_role("button", name=re.compile("^Delete")).click()
    dialog = page.get_by_role("dialog")
    assert "cascade" in dialog.inner_text()
    dialog.get_by_role("button", name="Delete").click()
    expect(summary).to_have_text(re.compile(r"^0 of 26 load balancers match"), timeout=20_000)
    assert fake_server.call("GET", f"{LBS}/{made[0]['id']}")[0] == 404
    page.get_by_label("Search").fill("")
    for lb in made[1:]:
        fake_server.ok("DELETE", f"{LBS}/{lb['id']}?cascade=true")
    page.locator("#lb-table tr.empty").wait_for(timeout=20_000)
    assert page.locator("#lb-table").inner_text().count("No load balancers yet.") == 1


def test_children_pages_edits_and_member_switch(
        page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    lb = graph_lb(fake_server, "shop")
    open_dashboard(page, fake_server, f"#/loadbalancers/{lb['id']}")
    # edit the load balancer
    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=description]").fill("the shop front")
    shot(page, "edit-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".details")).to_contain_text("the shop front")
    assert wait_active(fake_server, lb["id"])["description"] == "the shop front"
    # listener page: add an L7 policy to a second pool, then a rule
    listener = fake_server.ok("GET", f"/v2/lbaas/listeners?loadbalancer_id={lb['id']}")
    listener_id = listener["listeners"][0]["id"]
    fake_server.ok("POST", "/v2/lbaas/pools", {"pool": {
        "loadbalancer_id": lb["id"], "name": "static", "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN"}})
    wait_active(fake_server, lb["id"])
    page.locator(f".map a[href='#/listeners/{listener_id}']").click()
    page.get_by_role("button", name="Add L7 Policy").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=name]").fill("static-by-host")
    dialog.locator("[name=action]").select_option("REDIRECT_TO_POOL")
    dialog.locator("[name=redirect_pool_id]").select_option(label="static (HTTP)")
    dialog.get_by_role("button", name="Create").click()
    page.get_by_role("link", name="static-by-host").click()
    page.get_by_role("button", name="Add L7 Rule").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=type]").select_option("HOST_NAME")
    dialog.locator("[name=compare_type]").select_option("EQUAL_TO")
    dialog.locator("[name=value]").fill("static.example.com")
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator("table")).to_contain_text("static.example.com")
    shot(page, "l7policy")
    policies = fake_server.ok("GET", f"/v2/lbaas/l7policies?listener_id={listener_id}")
    policy = policies["l7policies"][0]
    rules = fake_server.ok("GET", f"/v2/lbaas/l7policies/{policy['id']}/rules")["rules"]
    assert [(r["type"], r["compare_type"], r["value"]) for r in rules] == [
        ("HOST_NAME", "EQUAL_TO", "static.example.com")]
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="shop-http").click()
    expect(page.locator("main h1")).to_have_text("shop-http")
    shot(page, "listener")
    # pool page: switch a member off and on, the API sees it
    page.get_by_role("link", name="shop-pool").first.click()
    expect(page.locator("main h1")).to_have_text("shop-pool")
    first, second = member_address(fake_server, 10), member_address(fake_server, 11)
    row = page.locator(f"tr[data-address='{first}']")
    row.get_by_role("button", name=re.compile("^Disable")).click()
    expect(row.locator("td").nth(4)).to_have_text("No", timeout=10_000)
    pool_id = page.url.rsplit("/", 1)[1]
    members = fake_server.ok("GET", f"/v2/lbaas/pools/{pool_id}/members")["members"]
    assert {m["address"]: m["admin_state_up"] for m in members} == {
        first: False, second: True}
    shot(page, "pool")
    wait_active(fake_server, lb["id"])
    page.locator(f"tr[data-address='{first}']").get_by_role(
        "button", name=re.compile("^Enable")).click()
    expect(page.locator(f"tr[data-address='{first}'] td").nth(4)).to_have_text(
        "Yes", timeout=10_000)
    # an API refusal lands beside its field in a dialog too
    wait_active(fake_server, lb["id"])
    page.get_by_role("button", name="Add Member").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=address]").fill(first)
    dialog.locator("[name=protocol_port]").fill("70000")
    dialog.get_by_role("button", name="Create").click()
    error = dialog.locator("[data-field=protocol_port] .field-error")
    expect(error).to_contain_text("protocol_port")
    dialog.get_by_role("button", name="Cancel").click()


def test_terminated_https_listener_picks_a_secret(page: Any, fake_server: Server) -> None:
    from tls_material import issue

    p12 = issue("www.example.com", names=("www.example.com",)).pkcs12()
    import base64

    secret = fake_server.ok("POST", "/key-manager/v1/secrets", {
        "name": "tls_secret1", "payload": base64.b64encode(p12).decode(),
        "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64"})["secret_ref"]
    lb = graph_lb(fake_server, "tls", members=1)
    open_dashboard(page, fake_server, f"#/loadbalancers/{lb['id']}")
    page.get_by_role("button", name="Add Listener").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=name]").fill("https")
    dialog.locator("[name=protocol]").select_option("TERMINATED_HTTPS")
    dialog.locator("[name=protocol_port]").fill("443")
    dialog.locator("[name=default_tls_container_ref]").select_option(label="Secret: tls_secret1")
    assert dialog.locator("[name=X-Forwarded-Proto]").is_visible()
    dialog.locator("[name=X-Forwarded-Proto]").check()
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator("table").first).to_contain_text("TERMINATED_HTTPS", timeout=10_000)
    listeners = fake_server.ok("GET", f"/v2/lbaas/listeners?loadbalancer_id={lb['id']}")
    https = next(x for x in listeners["listeners"] if x["name"] == "https")
    assert https["protocol_port"] == 443 and https["default_tls_container_ref"] == secret
    assert https["insert_headers"] == {"X-Forwarded-Proto": "true"}
    # editing keeps what the protocol allows in view, filled with the listener's values
    wait_active(fake_server, lb["id"])
    page.get_by_role("button", name="Edit listener https").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("[name=default_tls_container_ref]")).to_have_value(secret)
    expect(dialog.locator("[name=X-Forwarded-Proto]")).to_be_checked()
    dialog.locator("[name=X-Forwarded-For]").check()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    listener = fake_server.ok("GET", f"/v2/lbaas/listeners/{https['id']}")["listener"]
    assert listener["insert_headers"] == {"X-Forwarded-For": "true", "X-Forwarded-Proto": "true"}
    assert listener["default_tls_container_ref"] == secret


def associate_new_floating_ip(page: Any) -> Any:
    """Open the dialog, ask for a new address from ``public``; returns the dialog."""
    page.get_by_role("button", name="Associate Floating IP").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=floatingip_id]").select_option(
        label="Allocate a new address from public")
    dialog.get_by_role("button", name="Associate").click()
    return dialog


def test_floating_ip_associate_and_disassociate(page: Any, fake_server: Server) -> None:
    # a VIP on the external network itself cannot have one: the API says so in the dialog
    public = graph_lb(fake_server, "public-vip", members=1)
    open_dashboard(page, fake_server, f"#/loadbalancers/{public['id']}")
    dialog = associate_new_floating_ip(page)
    expect(dialog.get_by_role("alert")).to_contain_text("external network")
    dialog.get_by_role("button", name="Cancel").click()
    lb = graph_lb(fake_server, "fip", members=1, vip_subnet="private-subnet")
    open_dashboard(page, fake_server, f"#/loadbalancers/{lb['id']}")
    associate_new_floating_ip(page)
    page.get_by_role("button", name="Disassociate Floating IP").wait_for()
    fips = fake_server.ok("GET", f"/networking/v2.0/floatingips?port_id={lb['vip_port_id']}")
    address = fips["floatingips"][0]["floating_ip_address"]
    expect(page.locator(".details")).to_contain_text(address)
    page.get_by_role("button", name="Disassociate Floating IP").click()
    page.get_by_role("dialog").get_by_role("button", name="Disassociate").click()
    page.get_by_role("button", name="Associate Floating IP").wait_for()
    fips = fake_server.ok("GET", f"/networking/v2.0/floatingips?port_id={lb['vip_port_id']}")
    assert fips["floatingips"] == []


def test_amphora_failover(page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    lb = graph_lb(fake_server, "amp", members=1)
    amphorae = fake_server.ok("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")
    old = amphorae["amphorae"][0]
    open_dashboard(page, fake_server, "#/amphorae")
    row = page.locator(f"tr[data-id='{old['id']}']")
    expect(row).to_contain_text("STANDALONE")
    expect(row).to_contain_text("ALLOCATED")
    shot(page, "amphorae")
    row.get_by_role("button", name=re.compile("^Failover")).click()
    page.get_by_role("dialog").get_by_role("button", name="Failover").click()
    deadline = time.monotonic() + 20
    while True:
        now = fake_server.ok("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}")
        live = [a for a in now["amphorae"] if a["status"] == "ALLOCATED"]
        if live and live[0]["id"] != old["id"]:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    expect(page.locator(f"tr[data-id='{live[0]['id']}']")).to_be_visible(timeout=10_000)


def test_quotas(page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    open_dashboard(page, fake_server, "#/quotas")
    expect(page.locator("tr[data-resource=loadbalancer]").first).to_contain_text("Unlimited")
    page.get_by_label("Project ID").fill("team-blue")
    page.get_by_role("button", name="Set Quotas").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("[name=loadbalancer]").fill("5")
    dialog.locator("[name=member]").fill("50")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-project=team-blue]")).to_contain_text("5")
    quota = fake_server.ok("GET", "/v2/lbaas/quotas/team-blue")["quota"]
    assert quota["loadbalancer"] == 5 and quota["member"] == 50 and quota["pool"] == -1
    shot(page, "quotas")


def test_keyboard_and_labels(page: Any, fake_server: Server) -> None:
    """Every control is labelled; the wizard is reachable and usable with the keyboard."""
    open_dashboard(page, fake_server)
    first = page.evaluate("document.querySelector('a, button, input, select').textContent")
    assert first == "Skip to content"
    # a new page puts the focus on its heading, so the next Tab is its first action
    assert page.evaluate("document.activeElement.textContent") == "Load Balancers"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Create Load Balancer"
    page.keyboard.press("Enter")
    page.locator("#step-loadbalancer").wait_for()
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !el.labels || el.labels.length === 0).map((el) => el.name)""")
    assert unlabelled == []
    assert page.evaluate("document.activeElement.name") == "name"
    page.keyboard.type("kb")
    for _ in range(2):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "vip_subnet_id"


def test_phone_sized_window(page: Any, fake_server: Server, shot: Callable[..., None]) -> None:
    lb = graph_lb(fake_server, "phone", members=2)
    page.set_viewport_size(PHONE)
    for route, name, ready in ((f"#/loadbalancers/{lb['id']}", "phone-loadbalancer", "table"),
                               ("#/loadbalancers", "phone-loadbalancers", "table"),
                               ("#/loadbalancers/new", "phone-wizard", "#step-loadbalancer")):
        open_dashboard(page, fake_server, route)
        page.locator(f"main {ready}").first.wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{route}: the page is {overflow}px wider than the window"
        shot(page, name)
