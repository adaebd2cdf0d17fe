"""The pieces the role processes are made of, without starting any: transport URLs, database
URLs as octavia.conf writes them, the example settings, lease slots, job leases and the
resync scan's look rules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lbaas.main.instance import claim_instance, lease_holder
from lbaas.queue.resync import PATIENCE_LOOKS, ResyncScanner
from lbaas.queue.transport import amqp_urls, redacted
from lbaas.settings import load_settings, normalize_database_url
from lbaas.store import db, leases

ROOT = Path(__file__).resolve().parents[2]


def test_transport_url_as_octavia_conf_writes_it() -> None:
    assert amqp_urls("rabbit://guest:guest@127.0.0.1:5672/") == \
        ["amqp://guest:guest@127.0.0.1:5672/"]
    assert amqp_urls("rabbit://u:p@h1:5672,h2:5673/octavia") == \
        ["amqp://u:p@h1:5672/octavia", "amqp://u:p@h2:5673/octavia"]
    assert amqp_urls("amqps://u:p@h/v?heartbeat=30") == ["amqps://u:p@h/v?heartbeat=30"]
    with pytest.raises(ValueError, match="rabbit://"):
        amqp_urls("kafka://h:9092")
    assert "secret" not in redacted("amqp://octavia:secret@mq:5672/v")


def test_database_urls_as_octavia_conf_writes_them() -> None:
    assert normalize_database_url("mysql+pymysql://octavia:pw@db/octavia") == \
        "mysql+pymysql://octavia:pw@db/octavia"
    assert normalize_database_url("mysql://o:pw@db/octavia") == "mysql+pymysql://o:pw@db/octavia"
    assert normalize_database_url("postgresql+psycopg2://o@db/octavia") == \
        "postgresql+psycopg://o@db/octavia"
    settings = load_settings(overrides={"database": {"connection": "postgresql://o@db/x"}},
                             environ={})
    assert settings.effective_database_url == "postgresql+psycopg://o@db/x"
    # the older top-level spelling (and --database-url, LBAAS_DATABASE_URL) still works, and wins
    both = load_settings(overrides={"database": {"connection": "postgresql://o@db/x"},
                                    "database_url": "mysql://r@h/y"}, environ={})
    assert both.effective_database_url == "mysql+pymysql://r@h/y"


def test_the_example_settings_file_loads() -> None:
    settings = load_settings(ROOT / "deploy" / "lbaas.toml.example", environ={})
    assert settings.messaging.transport_url.startswith("rabbit://")
    assert settings.effective_database_url.startswith("mysql+pymysql://")
    assert settings.pki_dir == Path("/var/lib/lbaas/shared/pki")


def test_each_live_process_gets_its_own_slot_and_a_dead_ones_slot_is_reused(
        tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, environ={})
    first, second = claim_instance(settings, "worker"), claim_instance(settings, "worker")
    assert (first.slot, second.slot) == (0, 1)
    assert first.holder != second.holder
    assert first.holder.startswith(lease_holder(settings))
    first.release()  # what the kernel does when the process dies, SIGKILL included
    again = claim_instance(settings, "worker")
    assert again.slot == 0 and again.holder == first.holder  # it resumes its leases at once
    assert claim_instance(settings, "housekeeping").slot == 0


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'l.sqlite'}")
    db.upgrade(engine)
    return engine


def test_a_job_lease_runs_once_per_period_and_again_when_its_runner_died(engine: Any) -> None:
    key, now = leases.job_key("purge"), 1000.0
    # first seen: due one period later, nobody runs it now
    assert not leases.claim_due(engine, key, "a", 30, first_due=now + 60, now=now)
    assert not leases.claim_due(engine, key, "b", 30, first_due=now + 60, now=now + 59)
    assert leases.claim_due(engine, key, "a", 30, first_due=0, now=now + 61)
    assert not leases.claim_due(engine, key, "b", 30, first_due=0, now=now + 62)  # running
    assert leases.running_elsewhere(engine, key, "b", now=now + 62)
    leases.finish_job(engine, key, "a", next_due=now + 121)
    assert not leases.running_elsewhere(engine, key, "b", now=now + 62)
    assert not leases.claim_due(engine, key, "a", 30, first_due=0, now=now + 120)  # not due
    assert leases.claim_due(engine, key, "b", 30, first_due=0, now=now + 122)
    # b dies while running: after its lease (30 s) the job is due again, not a period later
    assert not leases.claim_due(engine, key, "a", 30, first_due=0, now=now + 150)
    assert leases.claim_due(engine, key, "a", 30, first_due=0, now=now + 153)


def test_a_lease_is_renewed_only_by_its_holder(engine: Any) -> None:
    assert leases.claim(engine, "lb1", "a", 10, now=100)
    assert not leases.claim(engine, "lb1", "b", 10, now=105)
    assert leases.renew(engine, "lb1", "a", 10, now=108)
    assert not leases.claim(engine, "lb1", "b", 10, now=115)  # renewed until 118
    assert leases.claim(engine, "lb1", "b", 10, now=119)
    assert not leases.renew(engine, "lb1", "a", 10, now=120)


def test_the_resync_scan_takes_what_stays_unfinished_and_unleased() -> None:
    seen: list[str] = []
    busy = False
    scan = ResyncScanner(engine=None, notify=seen.append, interval=5,  # type: ignore[arg-type]
                         busy=lambda: busy)
    assert scan.consider([("a", 1, False), ("b", 1, True)]) == []  # first look: wait
    assert scan.consider([("a", 1, False), ("b", 1, True)]) == ["a"]  # b is leased
    assert scan.consider([("a", 2, False)]) == []  # a new change: its hint may be on its way
    busy = True  # hints are flowing: a backlog is the broker's, not ours to take
    for _ in range(PATIENCE_LOOKS - 2):
        assert scan.consider([("a", 2, False)]) == []
    assert scan.consider([("a", 2, False)]) == ["a"]
    assert seen == ["a", "a"]


def test_claim_instance_is_fast(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, environ={})
    started = time.monotonic()
    held = [claim_instance(settings, "worker") for _ in range(20)]
    assert [h.slot for h in held] == list(range(20))
    assert time.monotonic() - started < 2
