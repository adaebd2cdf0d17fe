"""openstacksdk's functional tests pass against lbaas, in noauth and in keystone mode.

The load balancer suite (``openstack.tests.functional.load_balancer``) and the Neutron tests the
networking subset serves (``network.v2`` ``test_network``, ``test_subnet``, ``test_port``) run
unchanged in a child pytest; every test they define must pass: none may fail or skip, and none
may go missing (the expected names are read from the installed modules' source).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from sdk_harness import PASSWORD, run_functional, write_clouds

LOAD_BALANCER = ["openstack.tests.functional.load_balancer.v2.test_load_balancer"]
NETWORK = [f"openstack.tests.functional.network.v2.{name}"
           for name in ("test_network", "test_subnet", "test_port")]


def defined_tests(module: str) -> set[str]:
    """``Class::test_x`` for every test method the module's classes define."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    names.add(f"{node.name}::{item.name}")
    return names


def check(outcome: Any, modules: list[str]) -> None:
    expected = set().union(*(defined_tests(m) for m in modules))
    assert expected, modules
    report = "\n".join(f"{name}: {text[-1500:]}" for name, text in sorted(
        outcome.failed.items()))
    assert not outcome.failed, f"{len(outcome.failed)} failed:\n{report}"
    assert not outcome.skipped, f"skipped: {outcome.skipped}"
    missing = expected - set(outcome.passed)
    assert not missing, f"did not run: {sorted(missing)}\n{outcome.output[-3000:]}"


@pytest.fixture(scope="module")
def noauth_clouds(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    server = serve(api={"auth_strategy": "noauth"})
    return write_clouds(server, tmp_path_factory.mktemp("noauth") / "clouds.yaml")


@pytest.fixture(scope="module")
def keystone_clouds(serve: Any, keystone: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    server = serve(api={"auth_strategy": "keystone"}, keystone={
        "www_authenticate_uri": keystone.url, "auth_url": keystone.url, "username": "octavia",
        "password": PASSWORD, "project_name": "service"})
    return write_clouds(server, tmp_path_factory.mktemp("keystone") / "clouds.yaml",
                        admin_password=keystone.admin_password)


@pytest.mark.parametrize("modules", [LOAD_BALANCER, NETWORK], ids=["load_balancer", "network"])
def test_functional_tests_pass_in_noauth_mode(noauth_clouds: Path, modules: list[str],
                                              tmp_path: Path) -> None:
    check(run_functional(noauth_clouds, modules, tmp_path), modules)


@pytest.mark.parametrize("modules", [LOAD_BALANCER, NETWORK], ids=["load_balancer", "network"])
def test_functional_tests_pass_in_keystone_mode(keystone_clouds: Path, modules: list[str],
                                                tmp_path: Path) -> None:
    check(run_functional(keystone_clouds, modules, tmp_path), modules)
