"""A render refusal names the innermost object it came from (``RenderError.culprit``).

The reconciler contains that object (docs/decisions/0013): marks it ERROR, renders it at its
last accepted version or leaves it out, and converges the rest. So the name must be the
object whose value is refused, not its listener or pool, and a missing certificate must name
the listener or pool that uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from render_aggregates import http_site, l7policy, listener, pool, spec, uid

from lbaas.render import RenderError, RenderOptions, render_bundle

SECRET = "https://keymanager.example/v1/secrets/5ec00000-0000-4000-8000-000000000001"


def culprit(lb: dict[str, Any], certificates: dict[str, str] | None = None) -> Any:
    with pytest.raises(RenderError) as caught:
        render_bundle(spec(lb), RenderOptions(), certificates=certificates)
    return caught.value.culprit


def with_policy(**rule: Any) -> dict[str, Any]:
    lb = http_site()
    policy = l7policy(1, 1)
    policy["rules"][0].update(rule)
    lb["listeners"][0]["l7policies"] = [policy]
    return lb


def _member_bad(lb: dict[str, Any]) -> None:
    lb["pools"][0]["members"][1]["weight"] = 999


def _monitor_bad(lb: dict[str, Any]) -> None:
    lb["pools"][0]["healthmonitor"]["delay"] = 2147484


def _pool_bad(lb: dict[str, Any]) -> None:
    lb["pools"][0]["lb_algorithm"] = "RANDOM"


def _listener_bad(lb: dict[str, Any]) -> None:
    lb["listeners"][0]["timeout_client_data"] = -1


CASES: list[tuple[Callable[[dict[str, Any]], None], tuple[str, str]]] = [
    (_member_bad, ("member", uid("member", 2))),
    (_monitor_bad, ("health_monitor", uid("hm", 1))),
    (_pool_bad, ("pool", uid("pool", 1))),
    (_listener_bad, ("listener", uid("listener", 1))),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_the_object_whose_value_is_refused_is_named(
        mutate: Callable[[dict[str, Any]], None], expected: tuple[str, str]) -> None:
    lb = http_site()
    mutate(lb)
    assert culprit(lb) == expected


def test_rules_and_policies_are_named() -> None:
    assert culprit(with_policy(compare_type="REGEX", value=r"(a)\1")) == \
        ("l7rule", uid("rule", 1))
    lb = with_policy()
    lb["listeners"][0]["l7policies"][0].update(action="REDIRECT_TO_URL",
                                               redirect_url="not a url")
    assert culprit(lb) == ("l7policy", uid("policy", 1))


def test_a_missing_certificate_names_its_listener_or_pool() -> None:
    tls = listener(2, "TERMINATED_HTTPS", 443, default_tls_container_ref=SECRET)
    lb = http_site()
    lb["listeners"].append(tls)
    assert culprit(lb, certificates={}) == ("listener", tls["id"])
    lb = http_site()
    lb["pools"].append(pool(2, tls_enabled=True, ca_tls_container_ref=SECRET))
    assert culprit(lb, certificates={}) == ("pool", uid("pool", 2))
