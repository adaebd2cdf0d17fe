"""A machine on the underlay that is not a peer cannot poison the overlay's MAC learning.

The review's proof: one forged VXLAN datagram (lab-mgmt's VNI, an inner frame from the
controller's gateway MAC) sent to an amphora host moved that host's forwarding entry for the
gateway MAC to the sender, and the amphora's heartbeats went to it (the amphora was failed over).
Each participant's ``inet lbaas_underlay_*`` table now accepts VXLAN only on its underlay address
and only from the controller's flood-list peers.
"""

from __future__ import annotations

import json
import subprocess
import time

from fleet_lab import FleetLab, sh, until

from lbaas.drivers.local import names, ownership, underlay_guard
from lbaas.drivers.local.overlay import vni_for, vxlan_name
from lbaas.store import seed

ATTACKER_IP = "10.213.0.250"  # on the lab's underlay, never a host: not a peer
CONTROLLER_IP = "10.213.0.1"

_FORGE = """
import socket, struct, sys, time
vni, mac, gw, target, count = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3], \
    sys.argv[4], int(sys.argv[5])
arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 2) + mac + socket.inet_aton(gw) + b'\\xff' * 6 \
    + socket.inet_aton(gw)
frame = b'\\xff' * 6 + mac + b'\\x08\\x06' + arp
header = struct.pack('!B3s', 0x08, b'\\0\\0\\0') + vni.to_bytes(3, 'big') + b'\\0'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(count):
    s.sendto(header + frame, (target, 4789))
    time.sleep(0.2)
"""


def _fdb_dst(netns: str, dev: str, mac: str) -> set[str]:
    entries = json.loads(sh("ip", "netns", "exec", netns, "bridge", "-j", "fdb", "show",
                            "dev", dev) or "[]")
    return {str(e.get("dst")) for e in entries if e.get("mac") == mac and e.get("dst")}


def _drops(netns: str) -> int:
    tables = json.loads(sh("ip", "netns", "exec", netns, "nft", "-j", "list", "tables"))
    (table,) = [t["table"]["name"] for t in tables["nftables"] if "table" in t
                and t["table"]["name"].startswith(underlay_guard.TABLE_PREFIX)]
    ruleset = json.loads(sh("ip", "netns", "exec", netns, "nft", "-j", "list", "table", "inet",
                            table))
    return sum(int(e["counter"]["packets"]) for item in ruleset["nftables"] if "rule" in item
               for e in item["rule"]["expr"] if "counter" in e)


def test_a_forged_vxlan_datagram_from_a_non_peer_changes_nothing(lab: FleetLab) -> None:
    lb = lab.load_balancer("guarded")
    (amp,) = lab.amphorae(lb["id"])
    host = lab.hosts[lab.host_of(amp)]
    assert until(lambda: lab.api("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")
                 ["loadbalancer"]["operating_status"] == "ONLINE", 10), lab.log()
    mgmt = seed.network_id("lab-mgmt")
    vni, dev, gw_mac = vni_for(mgmt), vxlan_name(mgmt), names.bridge_mac(mgmt)
    assert _fdb_dst(host["netns"], dev, gw_mac) == {CONTROLLER_IP}
    dropped_before = _drops(host["netns"])

    # a port of its own on the lab's underlay switch (a bridge in the switch's namespace)
    attacker, switch, leg = f"lbh{lab.tag}-x", f"lbs{lab.tag}", "x"
    sh("ip", "netns", "add", attacker)
    try:
        sh("ip", "link", "add", leg, "netns", switch, "type", "veth", "peer", "name", "ul0",
           "netns", attacker)
        sh("ip", "-n", switch, "link", "set", leg, "master", "sw0", "up")
        sh("ip", "-n", attacker, "addr", "add", f"{ATTACKER_IP}/24", "dev", "ul0")
        sh("ip", "-n", attacker, "link", "set", "ul0", "up")
        forged = subprocess.run(
            ["ip", "netns", "exec", attacker, "python3", "-c", _FORGE, str(vni),
             gw_mac.replace(":", ""), "10.213.200.1", host["address"], "15"],
            capture_output=True, text=True, timeout=30)
        assert forged.returncode == 0, forged.stderr
        # the datagrams arrived and the host's guard dropped them; nothing was learnt
        assert _drops(host["netns"]) >= dropped_before + 15
        assert _fdb_dst(host["netns"], dev, gw_mac) == {CONTROLLER_IP}
    finally:
        subprocess.run(["ip", "-n", switch, "link", "del", leg], capture_output=True)
        subprocess.run(["ip", "netns", "del", attacker], capture_output=True)
    # heartbeats kept reaching the controller: well past heartbeat_timeout (1.5 s) the amphora
    # was not failed over and the load balancer is still ACTIVE and ONLINE
    time.sleep(3)
    (after,) = lab.amphorae(lb["id"])
    assert after["id"] == amp["id"] and after["compute_id"] == amp["compute_id"]
    shown = lab.api("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")


def test_the_controller_accepts_vxlan_from_the_hosts_only(lab: FleetLab) -> None:
    """(``lab down`` removing the table is checked for every fleet test: ``leftovers``.)"""
    lab.load_balancer("peers")
    table = underlay_guard.table_name(ownership.mark_for(lab.data))
    wanted = {h["address"] for h in lab.hosts.values()}

    def controller_peers() -> set[str]:
        listing = sh("nft", "-j", "list", "set", "inet", table, "peers", check=False)
        if not listing:
            return set()
        (found,) = [i["set"] for i in json.loads(listing)["nftables"] if "set" in i]
        return {str(e) for e in found.get("elem", [])}
    # the amphora's host has lab-mgmt and lab-public; the others join as they get segments
    assert until(lambda: controller_peers() & wanted != set(), 10), controller_peers()
    assert controller_peers() <= wanted
    rules = sh("nft", "list", "chain", "inet", table, "input")
    assert f"ip daddr {CONTROLLER_IP} ip saddr @peers udp dport 4789 accept" in rules, rules
