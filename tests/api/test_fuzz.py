"""Fuzzing: schemathesis cases from our own /openapi.json, plus hand-written hostile requests.

Key choices: one service per module (starting one per operation would eat the time budget);
cases are generated in-process from ``document()`` and sent through the ASGI app with the
Starlette test client; hypothesis runs derandomized with a small ``max_examples`` so the run is
repeatable and bounded. Path parameters are drawn both from real seeded objects (so handlers get
past the lookup) and from the schema (random or malformed ids). Every response must be below 500
and every 4xx must be Octavia's fault body (Neutron's under /networking).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from lbaas.api.resources.openapi import NEUTRON_PREFIX, document
from lbaas.main.service import build_service
from lbaas.settings import load_settings
from lbaas.store import db
from lbaas.store.seed import network_id, subnet_id
from lbaas.store.tables import metadata

try:  # the fuzzer's dependency (brings hypothesis); the hand-written cases run without it
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, reject, settings
    from hypothesis import strategies as st
    from schemathesis.generation import GenerationMode
except ImportError:
    schemathesis = None

NEEDS_SCHEMATHESIS = pytest.mark.skipif(schemathesis is None,
                                        reason="schemathesis is not installed")
DOC = document()
SCHEMA = schemathesis.openapi.from_dict(DOC) if schemathesis else None
OPERATIONS = [(path, method.upper()) for path, item in DOC["paths"].items() for method in item]
MAX_EXAMPLES = int(os.environ.get("LBAAS_FUZZ_EXAMPLES", "10"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if schemathesis else ()
LBS = "/v2/lbaas/loadbalancers"
FAULT_KEYS = {"faultcode", "faultstring", "debuginfo"}
# Headers the test client manages itself.
DROP_HEADERS = frozenset({"connection", "content-length", "host", "transfer-encoding"})


class Tracebacks(logging.Handler):
    """Keeps the tracebacks the app logs for unhandled errors, to explain a 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(logging.Formatter().format(record))


class Client:
    """JSON helper over the shared test client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = self.client.request(method, path, json=body)
        return resp.status_code, (resp.json() if resp.content else None)

    def wait_lb(self, lb_id: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, body = self.call("GET", f"{LBS}/{lb_id}")
            if code != 200:
                return False
            status = body["loadbalancer"]["provisioning_status"]
            if status == "ACTIVE":
                return True
            if status in ("ERROR", "PENDING_DELETE", "DELETED"):
                return False
            time.sleep(0.01)
        return False


def _wipe(url: str) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(scope="module")
def fuzz_client(database_url: str, tmp_path_factory: pytest.TempPathFactory) \
        -> Iterator[Client]:
    _wipe(database_url)
    data_dir = tmp_path_factory.mktemp("fuzz")
    overrides = {"data_dir": str(data_dir), "database_url": database_url,
                 "controller": {"resync_interval": 0.5, "drivers": "fake"}}
    service = build_service(load_settings(overrides=overrides, environ={}), migrate=False)
    with TestClient(service.app, raise_server_exceptions=False) as client:
        yield Client(client)


@pytest.fixture(scope="module")
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    logger = logging.getLogger("lbaas")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# What to create, in order: (key, path template, body template). Keys are the path segment
# that precedes an id parameter; "{x}" in templates refers to an already created key.
SEED_PLAN: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("listeners", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": "{loadbalancers}", "protocol": "HTTP", "protocol_port": 80}}),
    ("pools", "/v2/lbaas/pools", {"pool": {
        "listener_id": "{listeners}", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}),
    ("members", "/v2/lbaas/pools/{pools}/members", {"member": {
        "address": "192.0.2.10", "protocol_port": 8080}}),
    ("healthmonitors", "/v2/lbaas/healthmonitors", {"healthmonitor": {
        "pool_id": "{pools}", "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}}),
    ("l7policies", "/v2/lbaas/l7policies", {"l7policy": {
        "listener_id": "{listeners}", "action": "REJECT"}}),
    ("rules", "/v2/lbaas/l7policies/{l7policies}/rules", {"rule": {
        "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}}),
)
CATALOG_PLAN: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("flavorprofiles", "/v2/lbaas/flavorprofiles", {"flavorprofile": {
        "name": "fuzz-fp", "provider_name": "amphora", "flavor_data": "{}"}}, "id"),
    ("flavors", "/v2/lbaas/flavors", {"flavor": {
        "name": "fuzz-flavor", "flavor_profile_id": "{flavorprofiles}"}}, "id"),
    ("availabilityzoneprofiles", "/v2/lbaas/availabilityzoneprofiles", {
        "availability_zone_profile": {"name": "fuzz-azp", "provider_name": "amphora",
                                      "availability_zone_data": "{}"}}, "id"),
    ("availabilityzones", "/v2/lbaas/availabilityzones", {"availability_zone": {
        "name": "fuzz-az", "availability_zone_profile_id": "{availabilityzoneprofiles}"}},
     "name"),
)


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: ids[m.group(1)], template)
    return template


def _create(client: Client, path: str, body: dict[str, Any], ids: dict[str, str],
            key: str = "id") -> str | None:
    try:
        code, data = client.call("POST", _fill(path, ids), _fill(body, ids))
    except KeyError:  # a parent was not created
        return None
    if code != 201 or not isinstance(data, dict):
        return None
    return next(iter(data.values()))[key]


def seed(client: Client) -> dict[str, str]:
    """Real objects to aim path parameters at; parts whose endpoint is missing are skipped."""
    ids: dict[str, str] = {"providers": "amphora", "quotas": "fuzz-project",
                           "networks": network_id("public"), "subnets": subnet_id("public-subnet")}
    lb_id = _create(client, LBS, {"loadbalancer": {"vip_subnet_id": subnet_id("public-subnet")}},
                    ids)
    assert lb_id is not None and client.wait_lb(lb_id), "cannot create the seed load balancer"
    ids["loadbalancers"] = lb_id
    for key, path, body in SEED_PLAN:
        made = _create(client, path, body, ids)
        if made is not None:
            ids[key] = made
            client.wait_lb(lb_id)
    for key, path, body, id_key in CATALOG_PLAN:
        made = _create(client, path, body, ids, id_key)
        if made is not None:
            ids[key] = made
    code, lb = client.call("GET", f"{LBS}/{lb_id}")
    if code == 200:
        ids["ports"] = lb["loadbalancer"]["vip_port_id"]
    code, amps = client.call("GET", "/v2/octavia/amphorae")
    if code == 200 and amps.get("amphorae"):
        ids["amphorae"] = amps["amphorae"][0]["id"]
    return ids


@dataclass
class Seeds:
    """The seeded ids; ``dirty`` once a write may have changed or deleted them."""

    ids: dict[str, str] = field(default_factory=dict)
    dirty: bool = True


@pytest.fixture(scope="module")
def seeds(fuzz_client: Client) -> Seeds:
    return Seeds()


def _intact(client: Client, ids: dict[str, str]) -> bool:
    if not ids or not client.wait_lb(ids["loadbalancers"], timeout=5):
        return False
    for key, path, _ in SEED_PLAN:
        if key in ids and client.call("GET", f"{_fill(path, ids)}/{ids[key]}")[0] != 200:
            return False
    return True


def fresh_seeds(client: Client, seeds: Seeds, method: str) -> dict[str, str]:
    """Reuse the seeded objects while they are intact and ACTIVE; otherwise seed anew."""
    if seeds.dirty and not _intact(client, seeds.ids):
        seeds.ids = seed(client)
    seeds.dirty = method != "GET"
    return seeds.ids


def real_path_params(path: str, ids: dict[str, str]) -> dict[str, str]:
    """Map each ``{param}`` to the seeded object of the collection named just before it."""
    out: dict[str, str] = {}
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part.startswith("{") and i > 0 and parts[i - 1] in ids:
            out[part[1:-1]] = ids[parts[i - 1]]
    return out


def send(client: TestClient, case: Any) -> httpx.Response:
    kw = case.as_transport_kwargs(base_url="http://testserver")
    headers = {k: v for k, v in kw.get("headers", {}).items() if k.lower() not in DROP_HEADERS}
    content: bytes | None = None
    if "json" in kw:
        content = json.dumps(kw["json"]).encode()
    elif kw.get("data") is not None:
        data = kw["data"]
        content = data.encode() if isinstance(data, str) else data
    try:
        return client.request(kw["method"], kw["url"], params=kw.get("params"),
                              headers=headers, content=content)
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        reject()  # the client cannot even send it (bad header characters)
        raise AssertionError("unreachable") from None


def describe(case: Any, resp: httpx.Response) -> str:
    kw = case.as_transport_kwargs(base_url="")
    body = kw.get("json", kw.get("data"))
    text = json.dumps(body)[:600] if body is not None else ""
    return (f"{kw['method']} {resp.request.url} -> {resp.status_code}\n"
            f"request body: {text}\nresponse: {resp.text[:600]}")


# 500s already reported to the owners of the code (see docs/api-compat.md §3.4): a case
# that hits one marks its test xfail (not strict, so the fix turns it green) instead of failing.
KNOWN_SERVER_ERRORS: dict[str, str] = {}
WEBOB_KEYS = {"code", "title", "description"}


def check_response(path: str, case: Any, resp: httpx.Response, logs: Tracebacks) -> str | None:
    """Fail on a new server error or a malformed 4xx; return the reason of a known 500."""
    status = resp.status_code
    if status >= 500 and status != 501:
        trace = logs.texts[-1] if logs.texts else "(no traceback logged)"
        for signature, reason in KNOWN_SERVER_ERRORS.items():
            if signature in trace:
                return f"known server error: {reason}\n{describe(case, resp)}"
        raise AssertionError(f"server error\n{describe(case, resp)}\n{trace}")
    if not 400 <= status < 500 or status == 406:
        return None
    body = resp.json()
    if path.startswith(NEUTRON_PREFIX):
        assert isinstance(body, dict) and set(body) == {"NeutronError"}, describe(case, resp)
        return None
    if path.startswith("/identity"):  # Keystone's error body
        assert isinstance(body, dict) and set(body) == {"error"}, describe(case, resp)
        return None
    if path.startswith("/key-manager"):  # Barbican's error body
        assert isinstance(body, dict) and set(body) == {"code", "title", "description"}, \
            describe(case, resp)
        return None
    if isinstance(body, dict) and set(body) == WEBOB_KEYS:  # routing and pagination hook
        assert body["code"] == status and body["title"], describe(case, resp)
        return None
    assert isinstance(body, dict) and set(body) == FAULT_KEYS, describe(case, resp)
    assert body["faultcode"] == "Client" and body["debuginfo"] is None, describe(case, resp)
    assert isinstance(body["faultstring"], str) and body["faultstring"], describe(case, resp)
    return None


@NEEDS_SCHEMATHESIS
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_schemathesis_finds_no_server_error(path: str, method: str, fuzz_client: Client,
                                            seeds: Seeds, tracebacks: Tracebacks) \
        -> None:
    assert SCHEMA is not None
    operation = SCHEMA[path][method]
    ids = fresh_seeds(fuzz_client, seeds, method)
    real = real_path_params(path, ids)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in MODES]
    if real:
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters=real)
                       for mode in MODES]

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    @given(case=st.one_of(strategies))
    def fuzz(case: Any) -> None:
        tracebacks.texts.clear()
        resp = send(fuzz_client.client, case)
        known = check_response(path, case, resp, tracebacks)
        if known is not None:
            known_errors.append(known)

    known_errors: list[str] = []
    fuzz()  # keeps fuzzing past known errors, so a new one still fails the test
    if known_errors:
        pytest.xfail(known_errors[0])


# ---- hand-written hostile requests -------------------------------------------------------


def _fault(resp: httpx.Response, status: int = 400) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == FAULT_KEYS and body["faultcode"] == "Client", body
    assert body["debuginfo"] is None
    return body["faultstring"]


def _raw(api: Any, method: str, path: str, content: bytes,
         ctype: str = "application/json") -> httpx.Response:
    return api.client.request(method, path, content=content, headers={"content-type": ctype})


@pytest.fixture()
def lb(api: Any) -> dict[str, Any]:
    return api.create_lb(name="target")


def _writes(lb: dict[str, Any]) -> list[tuple[str, str]]:
    return [("POST", LBS), ("PUT", f"{LBS}/{lb['id']}")]


def test_malformed_json_is_400(api: Any, lb: dict[str, Any]) -> None:
    for method, path in _writes(lb):
        for raw in (b'{"loadbalancer": ', b"{'loadbalancer': {}}", b"\xff\xfe", b"{]"):
            msg = _fault(_raw(api, method, path, raw))
            assert "JSON" in msg, msg


@pytest.mark.parametrize("body", [[], ["loadbalancer"], "loadbalancer", 42, 1.5, True, None])
def test_non_object_bodies_are_400(api: Any, lb: dict[str, Any], body: Any) -> None:
    for method, path in _writes(lb):
        msg = _fault(_raw(api, method, path, json.dumps(body).encode()))
        assert "loadbalancer" in msg, msg


@pytest.mark.parametrize("inner", [[], "x", 7, True])
def test_non_object_envelope_content_is_400(api: Any, lb: dict[str, Any], inner: Any) -> None:
    for method, path in _writes(lb):
        msg = _fault(api.client.request(method, path, json={"loadbalancer": inner}))
        assert msg.startswith("Invalid input for field/attribute loadbalancer."), msg


def test_empty_body_is_400(api: Any, lb: dict[str, Any]) -> None:
    for method, path in _writes(lb):
        for raw in (b"", b"   ", b"\n"):
            msg = _fault(_raw(api, method, path, raw))
            assert "empty" in msg, msg


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("name", 5, "Wrong type"),
    ("name", ["a"], "Wrong type"),
    ("description", {"a": 1}, "Wrong type"),
    ("admin_state_up", "perhaps", "Wrong type"),
    ("admin_state_up", [], "Wrong type"),
    ("tags", "not-a-list", "Value should be a list"),
    ("tags", [1, 2], "Wrong type"),
    ("vip_sg_ids", ["nope"], "Value should be UUID format"),
])
def test_wrong_types_are_400(api: Any, lb: dict[str, Any], field: str, value: Any,
                             reason: str) -> None:
    for method, path in _writes(lb):
        body: dict[str, Any] = {field: value}
        if method == "POST":
            body["vip_subnet_id"] = api.subnet_id("public-subnet")
        msg = _fault(api.client.request(method, path, json={"loadbalancer": body}))
        assert msg.startswith(f"Invalid input for field/attribute {field}."), msg
        assert reason in msg, msg


def test_unknown_fields_are_400(api: Any, lb: dict[str, Any]) -> None:
    for method, path in _writes(lb):
        msg = _fault(api.client.request(method, path, json={"loadbalancer": {"bogus": 1}}))
        assert msg == "Unknown attribute for argument load_balancer.loadbalancer: bogus", msg
        msg = _fault(api.client.request(method, path, json={"loadbalancer": {}, "extra": 1}))
        assert msg == "Unknown attribute for argument load_balancer: extra", msg
        msg = _fault(api.client.request(method, path, json={"load_balancer": {}}))
        assert msg.startswith("Invalid input for field/attribute loadbalancer."), msg


def test_huge_strings_are_400_and_echo_is_truncated(api: Any, lb: dict[str, Any]) -> None:
    huge = "x" * 1_000_000
    for method, path in _writes(lb):
        body: dict[str, Any] = {"name": huge}
        if method == "POST":
            body["vip_subnet_id"] = api.subnet_id("public-subnet")
        resp = api.client.request(method, path, json={"loadbalancer": body})
        msg = _fault(resp)
        assert "maximum character requirement of 255" in msg, msg[:400]
        assert len(resp.content) < 2000
    code, body = api.get(f"{LBS}/{lb['id']}")
    assert code == 200 and body["loadbalancer"]["name"] == "target"


def test_body_over_one_mebibyte_is_413_fault(api: Any) -> None:
    body = json.dumps({"loadbalancer": {"name": "x" * (1 << 21)}}).encode()
    msg = _fault(_raw(api, "POST", LBS, body), 413)
    assert "too large" in msg




@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", "%00",
                                 "x" * 300, "00000000-0000-0000-0000-00000000000g"])
def test_bad_uuids_in_paths_are_404_faults(api: Any, bad: str) -> None:
    # Upstream looks ids up without validating them: a malformed id is simply not found.
    for method in ("GET", "PUT", "DELETE"):
        kw: dict[str, Any] = {"json": {"loadbalancer": {}}} if method == "PUT" else {}
        resp = api.client.request(method, f"{LBS}/{bad}", **kw)
        msg = _fault(resp, 404)
        assert "not found" in msg or "could not be found" in msg, msg
    msg = _fault(api.client.get(f"{LBS}/{uuid.uuid4()}/stats"), 404)
    assert msg.startswith("Load Balancer")


@pytest.mark.parametrize("field", ["vip_subnet_id", "vip_network_id", "vip_port_id",
                                   "flavor_id", "vip_qos_policy_id"])
def test_bad_uuids_in_bodies_are_400(api: Any, field: str) -> None:
    for bad in ("nope", "", 12, "12345678-1234-1234-1234-12345678901z"):
        code, body = api.post(LBS, {"loadbalancer": {field: bad}})
        assert code == 400, body
        assert body["faultstring"].startswith(f"Invalid input for field/attribute {field}.")
        assert "UUID" in body["faultstring"]


def test_bad_ip_in_body_is_400(api: Any) -> None:
    code, body = api.post(LBS, {"loadbalancer": {"vip_subnet_id": api.subnet_id(
        "public-subnet"), "vip_address": "300.1.1.1"}})
    assert code == 400 and "IPv4 or IPv6" in body["faultstring"], body


def _listener_body(lb_id: str, port: Any) -> dict[str, Any]:
    return {"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": port}}


@pytest.mark.parametrize("port", [0, -1, 65536, 10**20, "http", 80.5, True, None])
def test_out_of_range_listener_ports_are_400(api: Any, lb: dict[str, Any], port: Any) -> None:
    if "POST" not in api.service.app.router._index.get("/v2/lbaas/listeners", {}):
        pytest.skip("listener endpoints are not available")
    resp = api.client.post("/v2/lbaas/listeners", json=_listener_body(lb["id"], port))
    msg = _fault(resp)
    assert "protocol_port" in msg, msg


@pytest.mark.parametrize("port", [0, 65536, -80, "x"])
def test_out_of_range_member_ports_are_400(api: Any, lb: dict[str, Any], port: Any) -> None:
    code, pool = api.post("/v2/lbaas/pools", {"pool": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}})
    if code != 201:
        pytest.skip(f"pool endpoint not available: {code}")
    api.wait_lb(lb["id"])
    resp = api.client.post(f"/v2/lbaas/pools/{pool['pool']['id']}/members", json={"member": {
        "address": "192.0.2.20", "protocol_port": port}})
    msg = _fault(resp)
    assert "protocol_port" in msg, msg


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/xml"])
def test_non_json_payloads_are_400(api: Any, ctype: str) -> None:
    for raw in (b"name=x&vip_subnet_id=y", b"<loadbalancer><name>x</name></loadbalancer>"):
        msg = _fault(_raw(api, "POST", LBS, raw, ctype))
        assert "JSON" in msg, msg


def test_hostile_query_strings_are_400_not_500(api: Any, lb: dict[str, Any]) -> None:
    for query, fragment in (("marker=nope", "pagination marker"),
                            ("sort=bogus", "sort key"), ("bogus=1", "duplicate or invalid"),
                            ("tags=a&vip_port_id=1&nonsense=", "duplicate or invalid")):
        msg = _fault(api.client.get(f"{LBS}?{query}"))
        assert fragment in msg, (query, msg)
    # upstream checks these in a pecan hook: webob's error body
    for query, fragment in (("limit=abc", "pagination limit"), ("limit=1e3", "pagination limit"),
                            ("sort=name:sideways", "sort direction")):
        resp = api.client.get(f"{LBS}?{query}")
        assert resp.status_code == 400 and fragment in resp.json()["description"], query
    # Booleans are lenient as upstream's bool_from_string: anything else means false.
    code, body = api.get(f"{LBS}?admin_state_up=maybe")
    assert code == 200 and body["loadbalancers"] == []
    code, body = api.get(f"{LBS}?description={'x' * 5000}&name={'y' * 5000}")
    assert code == 200 and body["loadbalancers"] == [], body


def test_timestamp_filters_are_not_500(api: Any, lb: dict[str, Any]) -> None:
    code, body = api.get(f"{LBS}?created_at=2020-01-01T00:00:00")
    assert code == 200 and body["loadbalancers"] == [], body
    code, body = api.get(f"{LBS}?updated_at=")
    assert code in (200, 400), body


def test_nul_byte_in_a_filter_is_not_500(api: Any, lb: dict[str, Any]) -> None:
    code, body = api.get(f"{LBS}?name=%00")
    assert code in (200, 400), body


@NEEDS_SCHEMATHESIS
def test_the_checker_rejects_server_errors_and_foreign_error_bodies() -> None:
    assert SCHEMA is not None
    case = SCHEMA[LBS]["GET"].Case(query={"limit": "1"})
    request = httpx.Request("GET", f"http://testserver{LBS}?limit=1")
    logs = Tracebacks()

    def response(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body, request=request)

    fault = {"faultcode": "Client", "faultstring": "Bad.", "debuginfo": None}
    assert check_response(LBS, case, response(400, fault), logs) is None
    assert check_response(LBS, case, response(200, {"loadbalancers": []}), logs) is None
    for status, body in ((500, {**fault, "faultcode": "Server"}), (503, {}),
                         (400, {"error": "x"}), (404, {**fault, "debuginfo": "trace"}),
                         (409, {**fault, "faultstring": ""})):
        with pytest.raises(AssertionError):
            check_response(LBS, case, response(status, body), logs)


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "1" * 40])
def test_integer_filters_beyond_64_bits_are_400(api: Any, value: str) -> None:
    for path in ("/v2/lbaas/quotas?health_monitor=", "/v2/lbaas/listeners?protocol_port="):
        msg = _fault(api.client.get(path + value), 400)
        assert msg, path
