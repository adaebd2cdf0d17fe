"""Housekeeping on the fake drivers: purge of expired DELETED rows, certificate rotation
bookkeeping, crash recovery of amphora rows, stable lease holders and the full resync."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from lbaas.certs import CertificateAuthority
from lbaas.controller.cert_rotation import CertRotator
from lbaas.drivers.base import ComputeInfo
from lbaas.housekeeping.purge import purge_deleted
from lbaas.main.service import lease_holder
from lbaas.settings import load_settings
from lbaas.store import tables as t

WEEK = 7 * 24 * 3600.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _amphorae(api: Any, lb_id: str) -> list[Any]:
    with api.service.engine.connect() as conn:
        return list(conn.execute(select(t.amphora).where(t.amphora.c.load_balancer_id == lb_id)))


def _lb_row(api: Any, lb_id: str) -> Any:
    with api.service.engine.connect() as conn:
        return conn.execute(select(t.load_balancer).where(t.load_balancer.c.id == lb_id)).first()


def _deleted_lb(api: Any, with_listener: bool) -> str:
    lb = api.create_lb()
    if with_listener:
        code, _ = api.post("/v2/lbaas/listeners", {"listener": {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80,
            "tags": ["t1"]}})
        assert code == 201
        api.wait_lb(lb["id"])
    code, _ = api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true")
    assert code == 204
    api.wait_lb(lb["id"], "DELETED")
    return str(lb["id"])


def test_purge_removes_only_rows_deleted_longer_than_the_expiry(api: Any) -> None:
    old, recent = _deleted_lb(api, True), _deleted_lb(api, False)
    alive = api.create_lb()["id"]
    engine = api.service.engine
    eight_days_ago = _now() - dt.timedelta(days=8)
    with engine.begin() as conn:
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == old)
                     .values(updated_at=eight_days_ago))
        conn.execute(update(t.amphora).where(t.amphora.c.load_balancer_id == recent)
                     .values(updated_at=eight_days_ago))
    assert _amphorae(api, old) and _amphorae(api, recent)

    result = purge_deleted(engine, WEEK)

    assert _lb_row(api, old) is None and _amphorae(api, old) == []
    # the recent load balancer stays; its amphora row was DELETED long enough ago to go
    assert _lb_row(api, recent).provisioning_status == "DELETED"
    assert _amphorae(api, recent) == []
    assert _lb_row(api, alive).provisioning_status == "ACTIVE"
    assert [a.status for a in _amphorae(api, alive)] == ["ALLOCATED"]
    assert (result.load_balancers, result.amphorae) == (1, 2)
    with engine.connect() as conn:
        assert conn.execute(select(t.port).where(t.port.c.device_id.in_(
            [old, recent]))).first() is None
    # with a clock a week later, the recent one goes as well; the live one never does
    later = purge_deleted(engine, WEEK, now=_now() + dt.timedelta(days=8))
    assert (later.load_balancers, _lb_row(api, recent)) == (1, None)
    assert api.get(f"/v2/lbaas/loadbalancers/{alive}")[0] == 200


class _Agent:
    """Stands in for the agent: records certificates, shows the served one's expiry."""

    def __init__(self, served_not_after: dt.datetime) -> None:
        self.replaced: list[str] = []
        self.served_not_after = served_not_after

    async def replace_certificate(self, compute: ComputeInfo, cert_pem: str,
                                  key_pem: str) -> dict[str, str]:
        from cryptography import x509

        assert "PRIVATE KEY" in key_pem
        self.replaced.append(compute.compute_id)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        return {"serial": f"{cert.serial_number:x}",
                "not_after": cert.not_valid_after_utc.isoformat()}

    async def served_certificate(self, compute: ComputeInfo) -> dict[str, Any]:
        return {"notAfter": self.served_not_after.strftime("%b %d %H:%M:%S %Y GMT")}


def _amphora(api: Any, expires: dt.datetime | None) -> str:
    amp_id = str(uuid.uuid4())
    with api.service.engine.begin() as conn:
        conn.execute(insert(t.amphora).values(
            id=amp_id, load_balancer_id=str(uuid.uuid4()), compute_id=f"c-{amp_id[:8]}",
            lb_network_ip="198.51.100.7", status="ALLOCATED", cert_busy=False,
            failover_requested=False, cert_expiration=expires, created_at=_now()))
    return amp_id


def test_certificates_expiring_soon_are_rotated_and_recorded(api: Any, tmp_path: Path) -> None:
    soon = _amphora(api, _now() + dt.timedelta(days=3))
    later = _amphora(api, _now() + dt.timedelta(days=200))
    unknown = _amphora(api, None)  # its agent serves a certificate valid for 5 more days
    agent = _Agent(_now() + dt.timedelta(days=5))
    ca = CertificateAuthority.load_or_create(tmp_path / "ca")
    rotator = CertRotator(api.service.engine, ca, agent, dt.timedelta(days=14))

    rotated = asyncio.run(rotator.rotate_due())

    assert sorted(rotated) == sorted([soon, unknown])
    assert sorted(agent.replaced) == sorted([f"c-{soon[:8]}", f"c-{unknown[:8]}"])
    with api.service.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(t.amphora))}
    for amp_id in (soon, unknown):
        assert rows[amp_id].cert_expiration > _now() + dt.timedelta(days=300)
        assert rows[amp_id].cert_busy is False
    assert rows[later].cert_expiration < _now() + dt.timedelta(days=201)
    assert asyncio.run(rotator.rotate_due()) == []  # nothing is due any more
    assert ssl.cert_time_to_seconds(agent.served_not_after.strftime(
        "%b %d %H:%M:%S %Y GMT")) > time.time()


def _restart(api: Any) -> Any:
    """Start a second service on the same database (what ``lbaas serve`` does after a crash)."""
    from starlette.testclient import TestClient

    from lbaas.main.service import build_service

    return TestClient(build_service(api.service.settings, migrate=False).app)


def test_start_retires_amphorae_whose_build_died_and_frees_cert_busy(api: Any) -> None:
    lb = api.create_lb()
    stuck, busy = str(uuid.uuid4()), _amphora(api, None)
    with api.service.engine.begin() as conn:
        conn.execute(insert(t.amphora).values(
            id=stuck, load_balancer_id=lb["id"], status="PENDING_CREATE", cert_busy=False,
            failover_requested=False, created_at=_now()))
        conn.execute(update(t.amphora).where(t.amphora.c.id == busy).values(cert_busy=True))
    with _restart(api) as client:
        assert client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 200
    rows = {a.id: a for a in _amphorae(api, lb["id"])}
    assert rows[stuck].status == "DELETED"
    assert [a.status for a in rows.values() if a.id != stuck] == ["ALLOCATED"]
    with api.service.engine.connect() as conn:
        assert conn.execute(select(t.amphora.c.cert_busy).where(
            t.amphora.c.id == busy)).scalar_one() is False
    assert _lb_row(api, lb["id"]).provisioning_status == "ACTIVE"


def test_a_restarted_process_takes_its_own_lease_back_at_once(api: Any) -> None:
    code, body = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id("public-subnet")}})
    assert code == 201
    lb_id = body["loadbalancer"]["id"]
    api.wait_lb(lb_id)
    holder = api.service.reconciler.holder
    assert holder == lease_holder(api.service.settings)
    other = load_settings(overrides={"data_dir": "/elsewhere"}, environ={})
    assert lease_holder(other) != holder
    # the killed process left its lease and a pending change behind
    with api.service.engine.begin() as conn:
        conn.execute(update(t.load_balancer).where(t.load_balancer.c.id == lb_id)
                     .values(provisioning_status="PENDING_UPDATE"))
        conn.execute(insert(t.lease).values(load_balancer_id=lb_id, holder=holder,
                                            expires_at=time.time() + 3600))
    started = time.monotonic()
    with _restart(api):
        api.wait_lb(lb_id, "ACTIVE", timeout=5)
    assert time.monotonic() - started < 5


def test_full_resync_enqueues_every_active_load_balancer(api: Any) -> None:
    lbs = sorted(api.create_lb()["id"] for _ in range(3))
    gone = _deleted_lb(api, False)
    seen: list[str] = []
    housekeeping = api.service.housekeeping
    assert housekeeping is not None
    assert sorted(asyncio.run(housekeeping.full_resync(seen.append))) == lbs
    assert sorted(seen) == lbs and gone not in seen
