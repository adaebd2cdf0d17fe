"""The default cipher prohibit list refuses ciphers without encryption or authentication and
``@SECLEVEL=0``, in listeners and pools, under every name; the operator can change it."""

from __future__ import annotations

from typing import Any

import pytest

LISTENERS = "/v2/lbaas/listeners"
POOLS = "/v2/lbaas/pools"
PREFIX = "Validation failure: The following ciphers have been prohibited by an administrator: "


def _pool(api: Any, lb: dict[str, Any], ciphers: str) -> tuple[int, Any]:
    return api.post(POOLS, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                                     "tls_ciphers": ciphers}})


def _listener(api: Any, lb: dict[str, Any], ciphers: str) -> tuple[int, Any]:
    return api.post(LISTENERS, {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                             "protocol_port": 80, "tls_ciphers": ciphers}})


@pytest.mark.parametrize(("ciphers", "refused"), [
    ("eNULL", "eNULL"), ("aNULL", "aNULL"), ("@SECLEVEL=0:ALL", "@SECLEVEL=0"),
    ("ECDHE-RSA-AES128-GCM-SHA256:NULL-SHA", "NULL-SHA"), ("COMPLEMENTOFALL", "COMPLEMENTOFALL"),
    ("ADH-AES128-SHA:HIGH", "ADH-AES128-SHA"), ("HIGH:@SECLEVEL=0:eNULL", "@SECLEVEL=0, eNULL"),
])
def test_default_prohibit_list(api: Any, ciphers: str, refused: str) -> None:
    lb = api.create_lb()
    for make in (_pool, _listener):
        code, body = make(api, lb, ciphers)
        assert code == 400 and body["faultstring"] == PREFIX + refused, body


def test_safe_strings_pass(api: Any) -> None:
    lb = api.create_lb()
    code, body = _pool(api, lb, "HIGH:!aNULL:!eNULL:@SECLEVEL=2")
    assert code == 201, body
    api.wait_lb(lb["id"])
    code, body = _pool(api, lb, "ECDHE-ECDSA-AES256-GCM-SHA384:TLS_AES_128_GCM_SHA256")
    assert code == 201, body


def test_operator_can_empty_the_list(service_factory: Any) -> None:
    api = service_factory(api={"tls_cipher_prohibit_list": []})
    lb = api.create_lb()
    code, body = _pool(api, lb, "@SECLEVEL=0:ALL")
    assert code == 201, body
