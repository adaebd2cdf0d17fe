"""What ``lbaas serve`` writes to its log: the optional access log and the lifecycle lines,
both with the request id the client got in ``x-openstack-request-id``; ``--log-level``."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

LBAAS = str(Path(sys.executable).parent / "lbaas")


class Served:
    def __init__(self, tmp: Path, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = tmp / "fake.toml"
        config.write_text('[controller]\ndrivers = "fake"\n')
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp / "serve.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [LBAAS, "serve", "--config", str(config), "--data-dir", str(tmp / "data"),
                 "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                self.call("GET", "/")
                return
            except OSError:
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    def call(self, method: str, path: str, body: object = None) -> tuple[dict, str]:
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return (json.loads(raw) if raw else {}), resp.headers["x-openstack-request-id"]

    def wait_log(self, pattern: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.log.read_text(), re.M)):
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.log.read_text()}"
            time.sleep(0.05)
        return found.group(0)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        return self.log.read_text()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def start(*args: str) -> Served:
        where = tmp_path / str(len(made))
        where.mkdir()
        made.append(Served(where, *args))
        return made[-1]

    yield start
    for served in made:
        if served.proc.poll() is None:
            served.stop()


def _create_lb(served: Served) -> tuple[str, str]:
    subnets, _ = served.call("GET", "/networking/v2.0/subnets?name=public-subnet")
    body, rid = served.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": subnets["subnets"][0]["id"]}})
    return body["loadbalancer"]["id"], rid


def test_access_log_and_lifecycle_lines_carry_the_request_id(serve: Callable[..., Served]) \
        -> None:
    served = serve("--access-log")
    lb_id, rid = _create_lb(served)
    served.wait_log(rf"INFO lbaas\.api\.access: \[{rid}\] 127\.0\.0\.1 "
                    r'"POST /v2/lbaas/loadbalancers HTTP/1\.1" status: 201 len: \d+ time: ')
    served.wait_log(rf"INFO lbaas\.controller\.lifecycle: \[{rid}\] load balancer {lb_id} "
                    "created: ACTIVE$")
    _, rid = served.call("DELETE", f"/v2/lbaas/loadbalancers/{lb_id}")
    served.wait_log(rf"\[{rid}\] load balancer {lb_id} deleted$")


def test_no_access_log_by_default_and_log_level(serve: Callable[..., Served]) -> None:
    quiet = serve("--log-level", "warning")
    lb_id, _ = _create_lb(quiet)
    normal = serve()
    other_id, rid = _create_lb(normal)
    normal.wait_log(rf"\[{rid}\] load balancer {other_id} created: ACTIVE$")
    assert "lbaas.api.access" not in normal.stop()
    deadline = time.monotonic() + 10
    while quiet.call("GET", f"/v2/lbaas/loadbalancers/{lb_id}")[0]["loadbalancer"][
            "provisioning_status"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = quiet.stop()
    assert lb_id not in text and " INFO " not in text, text


def test_debug_level_shows_requests_and_start_line_names_the_data_plane(
        serve: Callable[..., Served]) -> None:
    served = serve("--log-level", "DEBUG")
    _, rid = served.call("GET", "/v2/lbaas/loadbalancers")
    served.wait_log(rf"\[{rid}\] 127\.0\.0\.1 \"GET /v2/lbaas/loadbalancers HTTP/1\.1\" "
                    "status: 200")
    text = served.stop()
    assert re.search(r"INFO lbaas\.main\.service: data plane: fake drivers: statuses only",
                     text), text


@pytest.mark.parametrize(("toml", "said"), [
    ("[api]\nport_number = 1\n", "lbaas serve: unknown setting ApiSettings.port_number"),
    ("[api\n", "fake.toml: Expected ']'"),
    ('[controller]\ndrivers = "fast"\n', "lbaas: cannot start: unknown controller.drivers "
     "'fast'"),
    ('[[networking.networks]]\nname = "x"\n', "lbaas serve: networking.networks: "),
])
def test_bad_settings_are_one_line_not_a_traceback(tmp_path: Path, toml: str, said: str) \
        -> None:
    config = tmp_path / "fake.toml"
    config.write_text(toml)
    done = subprocess.run([LBAAS, "serve", "--config", str(config), "--data-dir",
                           str(tmp_path / "data"), "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
