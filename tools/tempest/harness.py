"""Run octavia-tempest-plugin's API tests (``tests.api.v2``) against a live ``lbaas serve``.

The deployment is upstream's noop API job's: a real Keystone (tests/keystone's, with a
``load-balancer`` catalog entry pointing at lbaas), ``lbaas serve`` in keystone mode with
``[controller] drivers = "fake"``, ``[networking] driver = "noop"`` and ``[certificates]
cert_manager = "noop"``, and tempest with ``test_with_noop`` and dynamic credentials (tempest's
admin creates a project and user per credential it needs). Everything lives in one temporary
directory; the servers are stopped by the ids recorded here and the directory removed.
The outcome is compared with ``expected.toml``: a failure not listed there fails the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests" / "keystone"), str(REPO / "tests" / "dataplane"),
                str(REPO / "tests" / "sdk")]

from e2e_helpers import _stop, _wait_up  # noqa: E402
from keystone_server import KeystoneServer, free_port  # noqa: E402
from keystone_server import ensure_venv as ensure_keystone_venv  # noqa: E402
from sdk_harness import _toml  # noqa: E402  (the openstacksdk harness's settings writer)
from tempest_venv import ensure_venv as ensure_tempest_venv  # noqa: E402

from lbaas.settings import ApiSettings  # noqa: E402

PASSWORD = "tempest-service-password"
TESTS = r"^octavia_tempest_plugin\.tests\.api\.v2"
# RBAC_test_type -> lbaas's policy: its built-in defaults, or a file under policies/
DEFAULT_RBAC = "keystone_default_roles"
RBAC_TYPES = (DEFAULT_RBAC, "advanced", "owner_or_admin")
OCTAVIA_ROLES = ("load-balancer_observer", "load-balancer_global_observer",
                 "load-balancer_member", "load-balancer_admin", "load-balancer_quota_admin")
LBAAS = str(Path(sys.executable).parent / "lbaas")


@dataclass
class Outcome:
    passed: list[str]
    failed: dict[str, str]
    skipped: dict[str, str]


def short_id(test_id: str) -> str:
    """``…api.v2.test_pool.PoolAPITest.test_x[id-…,smoke]`` -> ``test_pool.PoolAPITest.test_x``."""
    return test_id.split("[", 1)[0].removeprefix("octavia_tempest_plugin.tests.api.v2.")


def start_keystone(work: Path) -> KeystoneServer:
    keystone = KeystoneServer(ensure_keystone_venv(), work / "keystone")
    keystone.prepare()
    keystone.start()
    # lbaas's own service user, which keystonemiddleware validates tokens with
    keystone.provision([], {"octavia": [("service", "service")]}, PASSWORD)
    return keystone


def register_octavia(keystone: KeystoneServer, url: str) -> None:
    """What devstack's Octavia plugin registers: the ``load-balancer`` service and endpoints
    in the catalog, and the advanced-RBAC roles (``--rbac advanced`` hands them out)."""
    with keystone.admin_client() as kc:
        for role in OCTAVIA_ROLES:
            kc.post("/roles", json={"role": {"name": role}}).raise_for_status()
        resp = kc.post("/services", json={"service": {"type": "load-balancer",
                                                      "name": "octavia", "enabled": True}})
        resp.raise_for_status()
        service_id = resp.json()["service"]["id"]
        for interface in ("public", "internal", "admin"):
            resp = kc.post("/endpoints", json={"endpoint": {
                "service_id": service_id, "interface": interface, "url": url,
                "region_id": "RegionOne", "enabled": True}})
            resp.raise_for_status()


def server_database(kind: str) -> tuple[str, Callable[[], None]]:
    """A new database on the machine's PostgreSQL or MariaDB and its drop function, made as
    the API suite makes them (tests/conftest.py)."""
    spec = importlib.util.spec_from_file_location("lbaas_tests_conftest",
                                                  REPO / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # the suite's own imports (starlette's test client)
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    url, drop = module._server_database(kind)
    return str(url), drop


def start_lbaas(work: Path, keystone: KeystoneServer, port: int, rbac: str,
                database_url: str | None) -> subprocess.Popen[bytes]:
    root = work / "lbaas"
    root.mkdir()
    api: dict[str, object] = {"host": "127.0.0.1", "port": port, "auth_strategy": "keystone"}
    if rbac != DEFAULT_RBAC:
        api["policy_file"] = str(HERE / "policies" / f"{rbac}.yaml")
    config = {
        "api": api,
        "keystone": {"www_authenticate_uri": keystone.url, "auth_url": keystone.url,
                     "username": "octavia", "password": PASSWORD, "project_name": "service"},
        "controller": {"drivers": "fake"},
        "networking": {"driver": "noop"},
        "certificates": {"cert_manager": "noop"},
        "health": {"enabled": False},
    }
    (root / "lbaas.toml").write_text(_toml(config))
    database = ["--database-url", database_url] if database_url else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LBAAS_"))}
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [LBAAS, "serve", "--config", str(root / "lbaas.toml"),
             "--data-dir", str(root / "data"), *database],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _wait_up(f"http://127.0.0.1:{port}/", proc, log, timeout=120)
    return proc


def write_tempest_conf(workspace: Path, keystone: KeystoneServer, provider: str,
                       rbac: str) -> None:
    providers = ",".join(f"{name}:{text}"
                         for name, text in ApiSettings().enabled_provider_drivers.items())
    template = string.Template((HERE / "tempest.conf.in").read_text())
    (workspace / "etc" / "tempest.conf").write_text(template.substitute(
        workdir=str(workspace), admin_password=keystone.admin_password,
        keystone_url=keystone.url, provider=provider, enabled_provider_drivers=providers,
        rbac_test_type=rbac))


def tempest_env(venv: Path, work: Path) -> dict[str, str]:
    """Tempest's environment: its venv first on PATH, HOME in the work directory (tempest
    writes ~/.tempest), no OS_* credentials of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", HOME=str(work))
    return env


def run_tempest(venv: Path, env: dict[str, str], workspace: Path, regex: str,
                concurrency: int) -> Outcome:
    subprocess.run([str(venv / "bin" / "tempest"), "run", "--regex", regex,
                    "--concurrency", str(concurrency)],
                   cwd=workspace, env=env, check=False, stdout=subprocess.DEVNULL,
                   stderr=(workspace / "tempest-run.err").open("wb"))
    stream = subprocess.run([str(venv / "bin" / "stestr"), "last", "--subunit"],
                            cwd=workspace, env=env, capture_output=True, check=True).stdout
    parsed = subprocess.run([str(venv / "bin" / "python"), str(HERE / "subunit_results.py")],
                            input=stream, capture_output=True, check=True).stdout
    outcome = Outcome([], {}, {})
    for test_id, result in sorted(json.loads(parsed).items()):
        status = result["status"]
        if status in ("success", "xfail"):
            outcome.passed.append(test_id)
        elif status == "skip":
            outcome.skipped[test_id] = result["reason"]
        else:
            outcome.failed[test_id] = result["reason"]
    return outcome


def load_expected() -> dict[str, str]:
    """short test id -> why it fails against lbaas (``expected.toml``)."""
    data = tomllib.loads((HERE / "expected.toml").read_text())
    return {name: entry["reason"] for name, entry in data.get("failures", {}).items()}


def report(outcome: Outcome, expected: dict[str, str], seconds: float, out: Path) -> int:
    failed = {short_id(t): text for t, text in outcome.failed.items()}
    unexpected = sorted(set(failed) - set(expected))
    fixed = sorted(name for name in expected if name not in failed
                   and any(short_id(t) == name for t in outcome.passed))
    lines = [f"octavia-tempest-plugin API tests against lbaas ({seconds:.0f} s)"]
    for name in sorted(set(failed) & set(expected)):
        lines.append(f"  known failure: {name}: {expected[name]}")
    for name in unexpected:
        lines.append(f"  FAILED: {name}\n{_indent(_tail(failed[name]))}")
    for name in fixed:
        lines.append(f"  now passes (remove it from expected.toml): {name}")
    reasons: dict[str, int] = {}
    for text in outcome.skipped.values():
        first = text.strip().splitlines()[0] if text.strip() else "?"
        reasons[first] = reasons.get(first, 0) + 1
    for text, count in sorted(reasons.items(), key=lambda item: -item[1]):
        lines.append(f"  skipped x{count}: {text[:200]}")
    sip = [_is_source_ip_port(t) for t in (outcome.passed, outcome.failed, outcome.skipped)]
    lines.append(f"  SOURCE_IP_PORT tests (upstream's amphora provider answers 501 and skips "
                 f"them): {sip[0]} passed, {sip[1]} failed, {sip[2]} skipped")
    lines.append(f"tempest: {len(outcome.passed)} passed, {len(outcome.failed)} failed, "
                 f"{len(outcome.skipped)} skipped")
    text = "\n".join(lines)
    out.write_text(text + "\n")
    print(text)
    return 1 if unexpected or fixed or not outcome.passed else 0


def _is_source_ip_port(test_ids: Iterable[str]) -> int:
    """How many of ``test_ids`` use SOURCE_IP_PORT (``SIP`` in upstream's test names)."""
    return sum(1 for t in test_ids if re.search(r"(^|_)SIP_", short_id(t).rsplit(".", 1)[-1]))


def _tail(traceback: str, count: int = 4) -> str:
    """The last lines of a traceback: the exception and, for tempest's, the response body."""
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regex", default=TESTS, help="which tests (stestr regex)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--provider", default="octavia",
                        help="[load_balancer] provider (upstream's job: octavia)")
    parser.add_argument("--rbac", choices=RBAC_TYPES, default=DEFAULT_RBAC,
                        help="[load_balancer] RBAC_test_type; lbaas gets the matching policy")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "mariadb"),
                        default="sqlite", help="lbaas's database (a server's: a new one, dropped "
                        "at the end)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, tempest.conf, subunit stream)")
    args = parser.parse_args(argv)

    venv = ensure_tempest_venv()
    work = Path(tempfile.mkdtemp(prefix="lbaas-tempest-"))
    keystone: KeystoneServer | None = None
    lbaas: subprocess.Popen[bytes] | None = None
    database_url: str | None = None
    drop_database: Callable[[], None] | None = None
    started = time.monotonic()
    try:
        keystone = start_keystone(work)
        port = free_port()
        register_octavia(keystone, f"http://127.0.0.1:{port}")
        if args.database != "sqlite":
            database_url, drop_database = server_database(args.database)
        lbaas = start_lbaas(work, keystone, port, args.rbac, database_url)
        workspace = work / "tempest"
        env = tempest_env(venv, work)
        subprocess.run([str(venv / "bin" / "tempest"), "init", "--workspace-path",
                        str(work / "workspace.yaml"), str(workspace)],
                       check=True, capture_output=True, env=env)
        write_tempest_conf(workspace, keystone, args.provider, args.rbac)
        outcome = run_tempest(venv, env, workspace, args.regex, args.concurrency)
        return report(outcome, load_expected(), time.monotonic() - started,
                      work / "summary.txt")
    finally:
        if lbaas is not None:
            _stop(lbaas)
        if keystone is not None:
            keystone.stop()
        if drop_database is not None:
            drop_database()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
