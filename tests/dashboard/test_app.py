"""The dashboard's HTTP side, through the service's ASGI app: the page and its files, the
security headers, and the way through to the API (which needs the dashboard's header and
reaches only the public API trees)."""

from __future__ import annotations

from typing import Any

LBS = "/dashboard/api/v2/lbaas/loadbalancers"
OURS = {"X-Requested-By": "lbaas-dashboard"}


def test_page_and_files_are_served_with_a_strict_policy(api: Any) -> None:
    resp = api.client.get("/dashboard", follow_redirects=False)
    assert resp.status_code == 308 and resp.headers["location"] == "/dashboard/"
    page = api.client.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="static/js/app.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    script = api.client.get("/dashboard/static/js/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    again = api.client.get("/dashboard/static/js/app.js",
                           headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    for path in ("/dashboard/static/../app.py", "/dashboard/static/%2e%2e/app.py",
                 "/dashboard/static/js/../../app.py", "/dashboard/app.py", "/dashboard/nothing"):
        assert api.client.get(path).status_code == 404, path


def test_no_library_comes_from_elsewhere(api: Any) -> None:
    """Works offline: every script and style is this server's own."""
    page = api.client.get("/dashboard/").text
    assert "http://" not in page and "https://" not in page
    script = api.client.get("/dashboard/static/js/app.js").text
    assert "from 'http" not in script


def test_api_calls_need_the_dashboard_header(api: Any) -> None:
    assert api.client.get(LBS).status_code == 403
    assert api.client.post(LBS, json={}).status_code == 403
    cross = {**OURS, "Origin": "http://evil.example"}
    assert api.client.get(LBS, headers=cross).status_code == 403
    resp = api.client.get(LBS, headers=OURS)
    assert resp.status_code == 200 and resp.json() == {"loadbalancers": [],
                                                       "loadbalancers_links": []}
    assert resp.headers["cache-control"] == "no-store"


def test_api_calls_are_the_apis_own(api: Any) -> None:
    body = {"loadbalancer": {"name": "x", "vip_subnet_id": "not-a-uuid"}}
    via_dashboard = api.client.post(LBS, json=body, headers=OURS)
    direct = api.client.post("/v2/lbaas/loadbalancers", json=body)
    assert via_dashboard.status_code == direct.status_code == 400
    assert via_dashboard.json() == direct.json()
    lb = api.create_lb(name="seen")
    listed = api.client.get(LBS + "?fields=id&fields=name", headers=OURS).json()
    assert listed["loadbalancers"] == [{"id": lb["id"], "name": "seen"}]
    subnets = api.client.get("/dashboard/api/networking/v2.0/subnets", headers=OURS)
    assert subnets.status_code == 200 and subnets.json()["subnets"]


def test_only_the_public_api_trees_are_reachable(api: Any) -> None:
    for path in ("/dashboard/api/metrics", "/dashboard/api/", "/dashboard/api/dashboard/",
                 "/dashboard/api/healthcheck"):
        assert api.client.get(path, headers=OURS).status_code == 404, path


def test_identity_headers_from_the_browser_do_not_pass(api: Any) -> None:
    """noauth trusts X-Project-Id; through the dashboard the project is the configured one."""
    headers = {**OURS, "X-Project-Id": "someone-else", "X-Roles": "reader"}
    body = {"loadbalancer": {"vip_subnet_id": api.subnet_id("public-subnet")}}
    made = api.client.post(LBS, json=body, headers=headers).json()["loadbalancer"]
    assert made["project_id"] == "admin"


def test_noauth_session_is_signed_in_as_admin(api: Any) -> None:
    assert api.client.get("/dashboard/session").status_code == 403
    who = api.client.get("/dashboard/session", headers=OURS).json()
    assert who["auth_strategy"] == "noauth" and who["authenticated"] is True
    assert who["is_admin"] is True and who["project_id"] == "admin"


def test_keystone_sign_in_checks_the_form_first(service_factory: Any) -> None:
    """keystone mode, nothing listening where Keystone should be: the form is still checked,
    and a session that cannot be verified says so instead of letting anyone in."""
    api = service_factory(api={"auth_strategy": "keystone"},
                          keystone={"www_authenticate_uri": "http://127.0.0.1:9/v3",
                                    "auth_url": "http://127.0.0.1:9/v3"})
    who = api.client.get("/dashboard/session", headers=OURS).json()
    assert who == {"auth_strategy": "keystone", "authenticated": False}
    missing = api.client.post("/dashboard/session", headers=OURS,
                              json={"username": "u", "password": "", "project": "p"})
    assert missing.status_code == 400 and missing.json()["field"] == "password"
    too_long = api.client.post("/dashboard/session", headers=OURS,
                               json={"username": "u" * 256, "password": "x", "project": "p"})
    assert too_long.status_code == 400 and too_long.json()["field"] == "username"
    down = api.client.post("/dashboard/session", headers=OURS,
                           json={"username": "u", "password": "x", "project": "p"})
    assert down.status_code == 503 and "set-cookie" not in down.headers
    api.client.cookies.set("lbaas_dashboard_token", "gAAAAAB-not-checked", path="/dashboard")
    assert api.client.get("/dashboard/session", headers=OURS).status_code == 503
    assert api.client.post("/dashboard/session", json={}).status_code == 403  # no header


def test_the_api_role_serves_the_dashboard_too(api: Any) -> None:
    """``lbaas api`` (the API service alone) assembles the same app, dashboard included."""
    from starlette.testclient import TestClient

    from lbaas.main.role_api import build_api_role

    role = build_api_role(api.service.settings)
    with TestClient(role) as client:
        assert client.get("/dashboard/").status_code == 200
        listed = client.get(LBS, headers=OURS)
        assert listed.status_code == 200 and listed.json()["loadbalancers"] == []
