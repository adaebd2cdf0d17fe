"""Rotate amphora server certificates before they expire, without touching traffic.

Upstream's housekeeping (``cert_rotate_interval``) re-issues the certificate of every amphora
whose ``cert_expiration`` is near and uploads it. Key choices: ``cert_busy`` is taken with a
conditional update so two rotators never work on one amphora; the agent swaps the certificate
for new TLS connections only (HAProxy is not involved, so the VIP never notices); the expiry we
record is the one the agent reports back. An amphora with no recorded expiry (made before this
existed) is asked which certificate it serves, so it is rotated only when actually due.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select, update

from lbaas.certs import CertificateAuthority
from lbaas.controller.provisioning import SERVER_CERT_DAYS
from lbaas.domain import constants as c
from lbaas.drivers.base import ComputeInfo, DriverError
from lbaas.store import tables as t

log = logging.getLogger(__name__)


class CertificateDriver(Protocol):
    async def replace_certificate(self, compute: ComputeInfo, cert_pem: str,
                                  key_pem: str) -> Any: ...

    async def served_certificate(self, compute: ComputeInfo) -> dict[str, Any]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC).replace(tzinfo=None)


class CertRotator:
    def __init__(self, engine: Engine, ca: CertificateAuthority, driver: CertificateDriver,
                 renew_before: timedelta, days: int = SERVER_CERT_DAYS) -> None:
        self.engine = engine
        self.ca = ca
        self.driver = driver
        self.renew_before = renew_before
        self.days = days

    def _candidates(self) -> list[Any]:
        amp = t.amphora
        with self.engine.connect() as conn:
            return list(conn.execute(select(amp).where(
                amp.c.status == c.AMPHORA_ALLOCATED, amp.c.compute_id.is_not(None),
                amp.c.lb_network_ip.is_not(None), amp.c.cert_busy.is_(False))))

    async def rotate_due(self, now: datetime | None = None) -> list[str]:
        """Rotate every amphora whose certificate expires within ``renew_before``."""
        now = now or _utcnow()
        rotated: list[str] = []
        for amp in self._candidates():
            compute = ComputeInfo(compute_id=amp.compute_id, lb_network_ip=amp.lb_network_ip)
            expiry = amp.cert_expiration or await self._learn_expiry(amp.id, compute)
            if expiry is None or expiry - now > self.renew_before:
                continue
            if await self.rotate(amp.id, compute):
                rotated.append(amp.id)
        return rotated

    async def _learn_expiry(self, amp_id: str, compute: ComputeInfo) -> datetime | None:
        try:
            peer = await self.driver.served_certificate(compute)
        except DriverError as exc:
            log.info("cannot read the certificate of amphora %s: %s", amp_id, exc)
            return None
        expiry = datetime.fromtimestamp(ssl.cert_time_to_seconds(peer["notAfter"]), UTC)\
            .replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(update(t.amphora).where(t.amphora.c.id == amp_id)
                         .values(cert_expiration=expiry))
        return expiry

    async def rotate(self, amp_id: str, compute: ComputeInfo) -> bool:
        amp = t.amphora
        with self.engine.begin() as conn:
            taken = conn.execute(update(amp).where(
                amp.c.id == amp_id, amp.c.cert_busy.is_(False),
                amp.c.status == c.AMPHORA_ALLOCATED).values(cert_busy=True)).rowcount
        if not taken:
            return False
        expiry = None
        try:
            cert, key = self.ca.issue_server(amp_id, compute.lb_network_ip, self.days)
            answer = await self.driver.replace_certificate(compute, cert, key)
            expiry = _naive(answer["not_after"])
            log.info("amphora %s: new server certificate valid until %s", amp_id, expiry)
        except DriverError as exc:
            log.warning("certificate rotation of amphora %s failed: %s", amp_id, exc)
        finally:
            values: dict[str, Any] = {"cert_busy": False}
            if expiry is not None:
                values["cert_expiration"] = expiry
            with self.engine.begin() as conn:
                conn.execute(update(amp).where(amp.c.id == amp_id).values(**values))
        return expiry is not None
