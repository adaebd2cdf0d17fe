"""Render UDP and SCTP listeners as nftables NAT rules (``nftables.conf``) plus the member table
the agent's health checks work from (``udp-members.json``). See docs/decisions/0010-udp-sctp.md.

Pure: no I/O; equal aggregates give byte-equal files. Key choices: one table ``ip lbaas_udp`` per
amphora (one load balancer each), recreated whole in one ``nft -f`` transaction. Each pool is a
named map from a slot number (0..SLOTS-1) to ``member address . port``; the listener's rule picks
a slot with ``numgen inc`` (ROUND_ROBIN), ``numgen random`` (LEAST_CONNECTIONS: nftables has no
connection counts) or ``jhash`` (SOURCE_IP, SOURCE_IP_PORT, SOURCE_IP persistence). Because the
modulus is fixed, the agent changes membership by rewriting the map's elements only; slots are
dealt to members in proportion to their weights, interleaved (smooth weighted round robin).
Replies come back through the amphora because DNATed flows are masqueraded toward members.
IPv6 VIPs and members are left out with a comment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lbaas.domain import constants as c
from lbaas.domain.spec import LoadBalancerSpec, PoolSpec
from lbaas.render import escaping as e
from lbaas.render.validate import MAX_INT32

NFTABLES_CONF = "nftables.conf"
UDP_MEMBERS_JSON = "udp-members.json"
TABLE = "lbaas_udp"
SLOTS = 240  # divisible by 1..6, 8, 10, 12, 15, 16: equal weights get equal shares
NFT_PROTO = {"UDP": "udp", "SCTP": "sctp"}
MONITOR_FIELDS = ("delay", "timeout", "max_retries", "max_retries_down")


def has_udp_listeners(lb: LoadBalancerSpec) -> bool:
    return any(li.protocol in c.UDP_LIKE for li in lb.listeners)


def deal_slots(members: list[tuple[str, int]], slots: int = SLOTS) -> list[str]:
    """Slot -> member key, shares proportional to weights, interleaved (smooth weighted RR).

    The agent has the same function (it may not import render): keep them equal."""
    members = [(k, w) for k, w in members if w > 0]
    if not members:
        return []
    total = sum(w for _, w in members)
    current = {k: 0 for k, _ in members}
    out = []
    for _ in range(slots):
        for key, weight in members:
            current[key] += weight
        best = max(members, key=lambda m: current[m[0]])[0]
        current[best] -= total
        out.append(best)
    return out


def render_nftables(lb: LoadBalancerSpec) -> dict[str, str]:
    """{"nftables.conf": rules, "udp-members.json": members} for the UDP/SCTP listeners of
    ``lb`` (raises RenderError on any unsafe value); {} when it has none."""
    if not has_udp_listeners(lb):
        return {}
    lb_id = e.ident("load_balancer id", lb.id)
    lb_up = e.flag("load_balancer admin_state_up", lb.admin_state_up)
    vip = e.ip("vip_address", lb.vip_address)
    pools = {e.ident("pool id", p.id): p for p in e.by_id(lb.pools)}
    maps: list[str] = []
    timeouts: list[str] = []
    filters: list[str] = []
    nat: list[str] = []
    table: dict[str, Any] = {}
    open_listeners: list[str] = []  # reported OPEN in heartbeats (HAProxy's frontend status)
    for listener in e.by_id(lb.listeners):
        protocol = listener.protocol
        if protocol not in c.UDP_LIKE:
            continue
        lid = e.ident("listener id", listener.id)
        proto = NFT_PROTO[protocol]
        port = e.port("listener protocol_port", listener.protocol_port)
        up = lb_up and e.flag("listener admin_state_up", listener.admin_state_up)
        pool_id = listener.default_pool_id
        pool = pools.get(e.ident("default_pool_id", pool_id)) if pool_id is not None else None
        if vip.version != 4:
            nat.append(f"\t\t# listener {lid}: IPv6 VIPs are not rendered yet")
            continue
        if up:
            open_listeners.append(lid)
        if not up or pool is None:
            nat.append(f"\t\t# listener {lid}: disabled or without a default pool")
            continue
        with e.blame("pool", pool.id):
            name, entry, map_lines = _pool(pool, protocol, proto)
        table[name] = {**entry, "listener_id": lid}
        maps += map_lines
        match = f"ip daddr {vip} {proto} dport {port}"
        cidrs = [e.cidr("allowed_cidrs", x) for x in e.items("allowed_cidrs",
                                                             listener.allowed_cidrs)]
        v4 = [x for x in cidrs if ":" not in x]
        if cidrs:
            allowed = f" ip saddr != {{ {', '.join(v4)} }}" if v4 else ""
            filters.append(f"\t\t{match}{allowed} drop")
        with e.blame("pool", pool.id):
            persistence = _persistence_timeout(pool)
        if persistence is not None and proto != "udp":
            nat.append(f"\t\t# listener {lid}: persistence_timeout is applied to UDP only")
        elif persistence is not None:
            tname = f"persist_{name[5:]}"
            timeouts += [f"\tct timeout {tname} {{", f"\t\tprotocol {proto}",
                         "\t\tl3proto ip",
                         f"\t\tpolicy = {{ unreplied : {persistence}, replied : {persistence} }}",
                         "\t}"]
            nat.append(f'\t\t{match} ct timeout set "{tname}"')
        nat.append(f"\t\t{match} dnat ip to {_selector(pool, proto)} mod {SLOTS} map @{name}")
    lines = [f"# load balancer {lb_id}: UDP/SCTP listeners rendered by lbaas; the agent",
             "# replaces the table whole and rewrites the pool maps as health checks decide.",
             f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
             *maps, *timeouts,
             "\tchain filter {", "\t\ttype filter hook prerouting priority -150; policy accept;",
             *filters, "\t}",
             "\tchain forward {", "\t\ttype filter hook forward priority 0; policy drop;",
             "\t\tct status dnat accept", "\t}",
             "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat; "
             "policy accept;", *nat, "\t}",
             "\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat; "
             "policy accept;", "\t\tct status dnat masquerade", "\t}", "}"]
    members = {"table": TABLE, "slots": SLOTS, "pools": table, "listeners": open_listeners}
    return {NFTABLES_CONF: "\n".join(lines) + "\n",
            UDP_MEMBERS_JSON: json.dumps(members, indent=1, sort_keys=True) + "\n"}


def _pool(pool: PoolSpec, protocol: str,
          proto: str) -> tuple[str, dict[str, Any], list[str]]:
    pid = e.ident("pool id", pool.id)
    name = "pool_" + pid.replace("-", "").lower()
    e.choice("pool protocol", pool.protocol, c.POOL_PROTOCOLS)
    e.choice("lb_algorithm", pool.lb_algorithm, c.LB_ALGORITHMS)
    pool_up = e.flag("pool admin_state_up", pool.admin_state_up)
    members: list[dict[str, Any]] = []
    skipped = []
    for member in e.by_id(pool.members):
        mid = e.ident("member id", member.id)
        address = e.ip("member address", member.address)
        port = e.port("member protocol_port", member.protocol_port)
        weight = member.weight
        weight = e.integer("member weight", 1 if weight is None else weight, 0, 256)
        up = e.flag("member admin_state_up", member.admin_state_up)
        monitor_address = member.monitor_address
        monitor_port = member.monitor_port
        if address.version != 4:
            skipped.append(f"\t# member {mid}: IPv6 members are not rendered yet")
            continue
        if not (up and pool_up and weight > 0):
            continue
        members.append({
            "id": mid, "address": str(address), "port": port, "weight": weight,
            "backup": e.flag("member backup", member.backup),
            "check_address": str(address) if monitor_address is None
            else str(e.ip("monitor_address", monitor_address)),
            "check_port": port if monitor_port is None else e.port("monitor_port", monitor_port),
        })
    primaries = [m for m in members if not m["backup"]] or members
    keys = {f"{m['address']} . {m['port']}": m["weight"] for m in primaries}
    slots = deal_slots(list(keys.items()))
    pairs = [f"{i} : {k}" for i, k in enumerate(slots)]
    rows = [", ".join(pairs[i:i + 6]) for i in range(0, len(pairs), 6)]
    typeof = f"\t\ttypeof numgen inc mod {SLOTS} : ip daddr . {proto} dport"
    body = ["\t\telements = {", *(f"\t\t\t{r}," for r in rows), "\t\t}"] if rows else []
    monitor = pool.healthmonitor
    with e.blame("health_monitor", None if monitor is None else monitor.id):
        entry = {"pool_id": pid, "protocol": protocol, "members": members,
                 "monitor": _monitor(pool)}
    return name, entry, [*skipped, f"\tmap {name} {{", typeof, *body, "\t}"]


def _monitor(pool: PoolSpec) -> dict[str, Any] | None:
    hm = pool.healthmonitor
    if hm is None:
        return None
    if not e.flag("healthmonitor admin_state_up", hm.admin_state_up):
        return None
    out: dict[str, Any] = {"type": e.choice("healthmonitor type", hm.type,
                                            c.HEALTH_MONITOR_TYPES)}
    defaults = {"max_retries_down": 3}
    for field in MONITOR_FIELDS:
        value = getattr(hm, field)
        value = defaults.get(field) if value is None else value
        out[field] = e.integer(f"healthmonitor {field}", value, 0, MAX_INT32)
    if out["type"] in ("HTTP", "HTTPS"):
        out["http_method"] = e.choice("http_method", hm.http_method or "GET",
                                      c.HTTP_METHODS)
        out["url_path"] = e.url_path(hm.url_path or "/")
        out["expected_codes"] = e.expected_codes(hm.expected_codes or "200")
        if hm.domain_name is not None:
            out["domain_name"] = e.domain_name(hm.domain_name)
    return out


def _selector(pool: PoolSpec, proto: str) -> str:
    sp = e.json_value("session_persistence", pool.session_persistence) or {}
    algorithm = pool.lb_algorithm
    if algorithm == "SOURCE_IP" or (isinstance(sp, Mapping) and sp.get("type") == "SOURCE_IP"):
        return "jhash ip saddr"
    if algorithm == "SOURCE_IP_PORT":
        return f"jhash ip saddr . {proto} sport"
    if algorithm == "LEAST_CONNECTIONS":
        return "numgen random"
    return "numgen inc"


def _persistence_timeout(pool: PoolSpec) -> int | None:
    sp = e.json_value("session_persistence", pool.session_persistence)
    if not sp:
        return None
    if not isinstance(sp, Mapping):
        raise e.RenderError("session_persistence: expected an object")
    e.choice("session_persistence type", sp.get("type"), c.SESSION_PERSISTENCE_TYPES)
    value = sp.get("persistence_timeout")
    if sp.get("type") != "SOURCE_IP" or not value:
        return None  # 0 means "not set", as upstream's template reads it
    return e.integer("persistence_timeout", value, 1, MAX_INT32)
