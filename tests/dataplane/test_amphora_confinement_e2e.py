"""A compromised amphora cannot reach the controller's secrets, other amphorae or their namespaces.

A real ``lbaas serve`` (ACTIVE_STANDBY: two amphorae, keepalived in each) is asked, from inside
an amphora, what a process there can do: commands run in the mount, PID and network namespaces
of the amphora's keepalived (root, parsing VRRP from the VIP network) with keepalived's own
capability bounding set, and in those of the agent with the agent's (both run under the
seccomp filter, which a shell entered with nsenter does not inherit: checked in /proc). Before
that, the same reads and ``nsenter`` are shown to work from the host, so the test cannot pass
by a wrong path.
The load balancer keeps serving through its VIP, and a configuration change (a second
listener) reaches it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from l7_helpers import http_get, leftovers, own_networks, skip_reason, start_server, stop_server

from lbaas.drivers.local import names
from lbaas.store.secrets import secret_box

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

CAP_SYS_ADMIN = 21
# a root shell whose capability bounding set is the one given (hex, as /proc's CapBnd)
BOUNDED_SHELL = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "keep = int(sys.argv[1], 16)\n"
    "last = int(open('/proc/sys/kernel/cap_last_cap').read())\n"
    "for cap in range(last + 1):\n"
    "    if not keep >> cap & 1 and libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "        sys.exit(f'cannot drop capability {cap}')\n"
    "os.execvp('sh', ['sh', '-c', sys.argv[2]])\n")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _pids(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _bounding_set(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return line.split()[1]
    raise AssertionError(f"no CapBnd for {pid}")


def _as(pid: int, script: str) -> str:
    """``script``'s output, run by root in ``pid``'s mount, PID and network namespaces with
    ``pid``'s capability bounding set: what code running as that process could do."""
    proc = subprocess.run(
        ["nsenter", "--target", str(pid), "--mount", "--pid", "--net", "--",
         sys.executable, "-c", BOUNDED_SHELL, _bounding_set(pid), script],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def _probe(secrets: list[Path], other_ns: str, own_ns: str) -> str:
    lines = [f"cat '{path}' >/dev/null 2>&1 && echo 'READ {path}'" for path in secrets]
    lines += [f"nsenter --net=/run/netns/{other_ns} true 2>/dev/null && echo 'ENTERED other'",
              f"nsenter --net=/run/netns/{own_ns} true 2>&1 | sed 's/^/own: /'",
              "echo netns: $(ls /run/netns)",
              "echo procs: $(ls /proc | grep -c '^[0-9]')"]
    return "\n".join(lines)


def test_an_amphora_reads_no_secret_and_enters_no_other_namespace() -> None:
    toml, subnets = own_networks()
    toml += '\n[controller]\nloadbalancer_topology = "ACTIVE_STANDBY"\n'
    server = start_server(toml)
    cidrs: list[str] = []
    try:
        show = {r: server.show("subnet", "show", s) for r, s in subnets.items()}
        cidrs = [s["cidr"] for s in show.values()]
        backend = show["priv"]["cidr"].rsplit(".", 1)[0] + ".50"
        server.backend(subnets["priv"], backend)
        lb, _pool, _member = server.http_lb("conf", subnets["pub"], subnets["priv"], backend)
        vip = lb["vip_address"]
        assert http_get(f"http://{vip}/")[0] == 200

        amps = json.loads(server.openstack(
            "loadbalancer", "amphora", "list", "--loadbalancer", lb["id"], "-f", "json"))
        assert len(amps) == 2
        ns, other = (server.show("loadbalancer", "amphora", "show", a["id"])["compute_id"]
                     for a in amps)
        data = server.root / "data"
        # the sealing key is made on the first use of a stored secret (a TLS listener's
        # certificate); this load balancer has none, so make it as that first use would
        secret_box(data)
        secrets = [data / "pki" / "ca.key", data / "heartbeat_key", data / "secrets_key",
                   data / "amphorae" / other / "tls" / "heartbeat.key",
                   data / "amphorae" / other / "tls" / "key.pem"]
        own_key = data / "amphorae" / ns / "tls" / "key.pem"
        for path in [*secrets, own_key]:
            assert path.is_file(), f"{path} is not there: the test would prove nothing"
        # from the host, all of it is reachable
        host = subprocess.run(["sh", "-c", _probe(secrets, other, ns)], capture_output=True,
                              text=True).stdout
        assert host.count("READ ") == len(secrets) and "ENTERED other" in host, host

        keepalived = [p for p in _pids(names.data_netns_of(ns))
                      if Path(_cmdline(p)[0]).name == "keepalived"]
        # the agent's processes (supervisor, worker), beside the ``timeout`` forwarding to them
        agent = [p for p in _pids(ns) if Path(_cmdline(p)[0]).name != "timeout"]
        assert keepalived and agent, (_pids(ns), _pids(names.data_netns_of(ns)))
        assert not int(_bounding_set(keepalived[0]), 16) >> CAP_SYS_ADMIN & 1
        for pid in (keepalived[0], agent[0]):  # the filter keeping the agent's CAP_SYS_ADMIN
            assert "Seccomp:\t2\n" in Path(f"/proc/{pid}/status").read_text()  # from mounts

        for who, pid in (("keepalived", keepalived[0]), ("agent", agent[0])):
            seen = _as(pid, _probe(secrets, other, ns) + f"\ncat '{own_key}' >/dev/null"
                       " && echo own-key-readable")
            assert "READ " not in seen, f"{who} read a secret:\n{seen}"
            assert "ENTERED other" not in seen, f"{who} entered {other}:\n{seen}"
            assert f"netns: {ns} {names.data_netns_of(ns)}\n" in seen, seen
            assert "own-key-readable" in seen, seen  # its own files stay reachable
            procs = int(seen.split("procs: ")[1].split()[0])
            assert procs < 20, f"{who} sees {procs} processes: the host's /proc"
            if who == "keepalived":  # no CAP_SYS_ADMIN: not even its own other namespace
                assert "own: nsenter: reassociate to namespace 'ns/net' failed: " \
                       "Operation not permitted" in seen, seen

        # the load balancer still serves, and a change reaches it
        server.openstack("loadbalancer", "listener", "create", "--name", "alt", "--protocol",
                         "HTTP", "--protocol-port", "8080", lb["id"])
        server.wait_active(lb["id"])
        alt = server.show("loadbalancer", "pool", "create", "--listener", "alt",
                          "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN")
        server.wait_active(lb["id"])
        server.openstack("loadbalancer", "member", "create", "--subnet-id", subnets["priv"],
                         "--address", backend, "--protocol-port", "80", alt["id"])
        server.wait_active(lb["id"])
        status, body = http_get(f"http://{vip}:8080/")[:2]
        assert (status, body.split("\n", 1)[0]) == (200, f"backend {backend}")
        assert http_get(f"http://{vip}/")[0] == 200
    finally:
        stop_server(server)
        if cidrs:
            assert leftovers(cidrs) == []
