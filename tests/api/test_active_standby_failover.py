"""ACTIVE_STANDBY on the fake drivers: failing over the MASTER promotes the survivor (it holds
the VIP, keepalived runs with nopreempt) and builds the replacement as the new BACKUP."""

from __future__ import annotations

from test_amphorae import AMPS, active_standby_lb, amps_of, wait_for


def test_failover_of_the_master_promotes_the_backup(api):
    lb = active_standby_lb(api)
    before = {a["role"]: a for a in amps_of(api, lb["id"])}
    master, backup = before["MASTER"], before["BACKUP"]
    assert api.put(f"{AMPS}/{master['id']}/failover")[0] == 202
    wait_for(lambda: api.get(f"{AMPS}/{master['id']}")[0] == 404)
    api.wait_lb(lb["id"])
    after = {a["role"]: a for a in amps_of(api, lb["id"])}
    assert sorted(after) == ["BACKUP", "MASTER"]
    assert after["MASTER"]["id"] == backup["id"] and after["MASTER"]["vrrp_priority"] == 100
    assert after["BACKUP"]["id"] not in (master["id"], backup["id"])
    assert after["BACKUP"]["vrrp_priority"] == 90 and after["BACKUP"]["status"] == "ALLOCATED"
    assert after["BACKUP"]["vrrp_id"] == 1
