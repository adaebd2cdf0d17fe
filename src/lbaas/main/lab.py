"""``lbaas lab up|down|kill-host``: a fleet of simulated amphora hosts on this machine.

Each host is a network namespace ``lbh<tag>-<name>`` with its own uplink (a veth, ``ul0``
inside) on the lab's underlay switch (10.213.0.0/24: the controller is .1, hosts .11 up), running
``lbaas host-agent`` with a certificate from the data directory's internal CA (``host:<name>``),
registering itself with the controller (``--controller 10.213.0.1:9445``). The lab's
managed networks (``lab-public`` 10.213.4.0/24, ``lab-private`` 10.213.10.0/24, ``lab-mgmt``
10.213.200.0/24) are VXLAN segments between the controller (this machine's own namespace) and the
hosts; a client namespace ``lbh<tag>-client`` sits on the external segment (``lab-public``).
``lab up`` writes ``<data dir>/lab.toml`` for ``lbaas serve --config`` and prints it.

The underlay switch is a bridge ``sw0`` in a network namespace of its own, ``lbs<tag>``, with
``br_netfilter`` off there (``_no_bridge_netfilter``): a physical switch runs none of the
controller's netfilter, while a bridge in this machine's own namespace would hand every VXLAN
frame it forwards to the machine's iptables hooks if ``br_netfilter`` is loaded here. Its ports:
``h1``, ``h2``... (the hosts' uplinks) and ``c``, the peer of the controller's underlay interface
``lbu<tag>`` in this machine's namespace (a veth carrying 10.213.0.1: ``underlay_dev``).

``lab up --flat-public``: ``lab-public`` is a flat provider network instead (decision 0117): a
lab "physical external" bridge ``lbx<tag>`` (no address, apart from the underlay), each host a
second veth into it (``px0`` inside, mapped with ``--provider-interface lab-public=px0``), the
controller a veth pair ``lbxc<tag>``/``lbxp<tag>`` (``lbxp`` mapped in ``[fleet]
provider_interfaces``), and the client namespace on that bridge.

Key choice: every name carries ``<tag>`` (6 hex of the data directory's path) and every link the
lab makes carries the owner mark of ``ownership.py``, so a lab touches only what it made and two
data directories' labs never share anything. ``lab down`` finds everything again from
``<data dir>/lab/lab.json`` and the names, kills only the processes in the lab's namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbaas.drivers.local import netlink as nl

UNDERLAY = ipaddress.ip_network("10.213.0.0/24")
CONTROLLER_HOST = 1
FIRST_HOST = 11
CLIENT_ADDRESS = "10.213.4.250"
NETWORKS = (
    ("lab-public", "lab-public-subnet", "10.213.4.0/24", "10.213.4.1", "10.213.4.10",
     "10.213.4.200"),
    ("lab-private", "lab-private-subnet", "10.213.10.0/24", "10.213.10.1", "10.213.10.10",
     "10.213.10.200"),
    ("lab-mgmt", "lab-mgmt-subnet", "10.213.200.0/24", "10.213.200.1", "10.213.200.10",
     "10.213.200.250"),
)
ZONES = ("az1", "az2")  # hosts alternate: h1 az1, h2 az2, h3 az1, ...
HOST_PORT = 9444
PROVIDER_DEV = "px0"  # a host's interface on the lab's physical external network
REGISTRATION_PORT = 9445
REGISTER_INTERVAL = 2.0  # host-agents announce themselves (and retry) this often at most
CAPACITY = 20
STOP_WAIT = 5.0
SWITCH_BRIDGE = "sw0"  # the underlay switch, inside the lab's switch namespace
SWITCH_CONTROLLER_PORT = "c"  # the switch's end of the controller's underlay veth


@dataclass(frozen=True)
class Lab:
    data_dir: Path

    @property
    def tag(self) -> str:
        return hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:6]

    @property
    def home(self) -> Path:
        return self.data_dir / "lab"

    @property
    def underlay_link(self) -> str:
        """The controller's underlay interface (a veth into the switch; ``underlay_dev``)."""
        return f"lbu{self.tag}"

    @property
    def switch(self) -> str:
        """The underlay switch's network namespace (bridge ``SWITCH_BRIDGE`` inside)."""
        return f"lbs{self.tag}"

    def netns(self, host: str) -> str:
        return f"lbh{self.tag}-{host}"

    def uplink(self, host: str) -> str:
        """A host's port on the underlay switch (inside the switch's namespace)."""
        return host[:15]

    @property
    def external(self) -> str:
        """The lab's physical external network (--flat-public): a bridge of its own."""
        return f"lbx{self.tag}"

    def external_link(self, host: str) -> str:
        """A machine's veth end on the external bridge (``c``: the controller's)."""
        return f"lbx{self.tag}{host}"[:15]

    @property
    def controller_provider(self) -> str:
        """The controller's interface mapped to lab-public (the peer of ``lbx<tag>c``)."""
        return f"lbxp{self.tag}"

    def host_dir(self, host: str) -> Path:
        return self.home / "hosts" / host

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "lab.toml"

    @property
    def mark(self) -> str:
        from lbaas.drivers.local import ownership

        return ownership.mark_for(self.data_dir)

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.home / "lab.json").read_text()))
        except (OSError, ValueError):
            return {"hosts": []}


def _host_ip(index: int) -> str:
    return str(UNDERLAY.network_address + FIRST_HOST + index)


def _controller_ip() -> str:
    return str(UNDERLAY.network_address + CONTROLLER_HOST)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_text(lab: Lab, hosts: list[dict[str, Any]], api_port: int,
                  flat_public: bool = False) -> str:
    flat = [f'provider_interfaces = {{"{NETWORKS[0][0]}" = "{lab.controller_provider}"}}'] \
        if flat_public else []
    lines = [f'data_dir = "{lab.data_dir.resolve()}"', "", "[api]", f"port = {api_port}", "",
             "[networking]", 'management_network = "lab-mgmt"', "",
             "[fleet]",
             f'registration_listen = "{_controller_ip()}:{REGISTRATION_PORT}"',
             f'underlay_ip = "{_controller_ip()}"', f'underlay_dev = "{lab.underlay_link}"',
             "poll_interval = 0.3", "host_timeout = 2.0", *flat, "",
             "[health]", "heartbeat_interval = 0.5", "heartbeat_timeout = 1.5", ""]
    for name, subnet, cidr, gw, start, end in NETWORKS:
        lines += ["[[networking.networks]]", f'name = "{name}"', f'subnet_name = "{subnet}"',
                  f'cidr = "{cidr}"', f'gateway_ip = "{gw}"', f'allocation_start = "{start}"',
                  f'allocation_end = "{end}"', ""]
    return "\n".join(lines)


def _host_certificate(lab: Lab, name: str, address: str) -> dict[str, str]:
    from lbaas.certs.ca import CertificateAuthority
    from lbaas.main.shared_files import shared_files_lock
    from lbaas.settings import load_settings

    settings = load_settings(overrides={"data_dir": str(lab.data_dir)})
    with shared_files_lock(settings):
        ca = CertificateAuthority.load_or_create(settings.pki_dir)
    tls = lab.host_dir(name) / "tls"
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = ca.issue_host_agent(name, address)
    files = {"ca_file": tls / "ca.pem", "cert_file": tls / "cert.pem", "key_file": tls / "key.pem"}
    files["ca_file"].write_text(ca.ca_pem)
    files["cert_file"].write_text(cert)
    fd = os.open(files["key_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return {k: str(v) for k, v in files.items()}


async def _ensure_switch(lab: Lab) -> None:
    """The underlay switch (a bridge in a namespace of its own, no netfilter) and the
    controller's veth into it: ``lbu<tag>`` here, with the controller's underlay address."""
    sw = lab.switch
    if not await nl.netns_exists(sw):
        await nl.ip("netns", "add", sw)
    await _no_bridge_netfilter(sw)
    if not await nl.link_exists(SWITCH_BRIDGE, sw):
        await nl.ip("link", "add", "name", SWITCH_BRIDGE, "type", "bridge", ns=sw)
    await nl.ip("link", "set", "dev", SWITCH_BRIDGE, "alias", lab.mark, "up", ns=sw)
    if not await nl.link_exists(lab.underlay_link):
        await nl.delete_link(SWITCH_CONTROLLER_PORT, sw)  # a crash's half: recreate the pair
        await nl.ip("link", "add", "name", lab.underlay_link, "type", "veth", "peer", "name",
                    SWITCH_CONTROLLER_PORT, "netns", sw)
    await nl.ip("link", "set", "dev", SWITCH_CONTROLLER_PORT, "master", SWITCH_BRIDGE, "alias",
                lab.mark, "up", ns=sw)
    await nl.ip("link", "set", "dev", lab.underlay_link, "alias", lab.mark, "up")
    address = f"{_controller_ip()}/{UNDERLAY.prefixlen}"
    if address not in await nl.addresses(lab.underlay_link):
        await nl.ip("addr", "replace", address, "dev", lab.underlay_link)


async def _ensure_external(lab: Lab) -> None:
    """The lab's physical external network and the controller's veth into it."""
    if not await nl.link_exists(lab.external):
        await nl.ip("link", "add", "name", lab.external, "type", "bridge")
    await nl.ip("link", "set", "dev", lab.external, "alias", lab.mark, "up")
    outside = lab.external_link("c")
    if not await nl.link_exists(outside):
        await nl.batch([f"link add {outside} type veth peer name {lab.controller_provider}",
                        f"link set dev {outside} master {lab.external} up"])
    await nl.ip("link", "set", "dev", outside, "alias", lab.mark)


async def _plug_external(lab: Lab, ns: str, name: str) -> list[str]:
    """A host's second veth into the external bridge; its host-agent's mapping option."""
    outside = lab.external_link(name)
    if not await nl.link_exists(outside):
        await nl.batch([f"link add {outside} type veth peer name {PROVIDER_DEV} netns {ns}",
                        f"link set dev {outside} master {lab.external} up"])
    await nl.ip("link", "set", "dev", outside, "alias", lab.mark)
    return ["--provider-interface", f"{NETWORKS[0][0]}={PROVIDER_DEV}"]


async def _make_host(lab: Lab, index: int, name: str, zone: str,
                     flat_public: bool = False) -> dict[str, Any]:
    ns, uplink, address = lab.netns(name), lab.uplink(name), _host_ip(index)
    if not await nl.netns_exists(ns):
        await nl.ip("netns", "add", ns)
    if not await nl.link_exists(uplink, lab.switch):
        await nl.ip("link", "del", "dev", "ul0", ns=ns, check=False)  # a crash's half
        await nl.ip("link", "add", "name", uplink, "netns", lab.switch, "type", "veth", "peer",
                    "name", "ul0", "netns", ns)
    await nl.ip("link", "set", "dev", uplink, "master", SWITCH_BRIDGE, "alias", lab.mark, "up",
                ns=lab.switch)
    extra = await _plug_external(lab, ns, name) if flat_public else []
    await nl.batch(["link set dev lo up", "link set dev ul0 up",
                    f"addr replace {address}/{UNDERLAY.prefixlen} dev ul0"], ns=ns)
    await _no_bridge_netfilter(ns)
    home = lab.host_dir(name)
    home.mkdir(parents=True, exist_ok=True)
    files = _host_certificate(lab, name, address)
    host = {"name": name, "zone": zone, "address": address, "netns": ns, "uplink": uplink,
            "base_dir": str((home / "a").resolve()), "agent_extra": extra}
    pid = _start_agent(lab, host, files)
    host["pid"] = pid
    return host


async def _no_bridge_netfilter(ns: str) -> None:
    """Bridged frames bypass nftables in the host's namespace, as docs/deploy.md asks of an
    amphora host: with ``br_netfilter`` loaded (its sysctls are per namespace, 1 in a new one)
    every frame an amphora host bridges would pay the inet hooks and a conntrack lookup (the
    host guard's ``ct state`` turns conntrack on), once on each host it crosses."""
    if Path("/proc/sys/net/bridge").is_dir():
        await nl.run(nl.IP, "netns", "exec", ns, "sysctl", "-qw",
                     *(f"net.bridge.bridge-nf-call-{t}=0"
                       for t in ("iptables", "ip6tables", "arptables")), check=False)


def _start_agent(lab: Lab, host: dict[str, Any], files: dict[str, str]) -> int:
    home = lab.host_dir(host["name"])
    argv = ["nsenter", f"--net={nl.NETNS_DIR}/{host['netns']}", "--", sys.executable, "-m",
            "lbaas.main.cli", "host-agent", "--private-sysfs", "--demo-backends",
            "--name", host["name"], "--zone", host["zone"],
            "--capacity", str(CAPACITY), "--listen", f"{host['address']}:{HOST_PORT}",
            "--underlay-dev", "ul0", "--base-dir", host["base_dir"],
            "--ca-file", files["ca_file"], "--cert-file", files["cert_file"],
            "--key-file", files["key_file"],
            "--controller", f"{_controller_ip()}:{REGISTRATION_PORT}",
            "--register-interval", str(REGISTER_INTERVAL), *host.get("agent_extra", [])]
    with open(home / "host-agent.log", "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True)
    (home / "pid").write_text(f"{child.pid}\n")
    return child.pid


async def _make_client(lab: Lab, flat_public: bool = False) -> None:
    """The client namespace on the external segment: a veth into the controller's lab-public
    bridge, which ``lab up`` ensures as ``lbaas serve`` would (same owner mark, same state);
    with ``flat_public``, into the external bridge."""
    from lbaas.drivers.base import SubnetInfo
    from lbaas.drivers.local import names
    from lbaas.main.local_plane import local_network
    from lbaas.settings import load_settings
    from lbaas.store import seed

    settings = load_settings(lab.settings_file)
    name, subnet_name, cidr, gw, _, _ = NETWORKS[0]
    subnet = SubnetInfo(network_id=seed.network_id(name), subnet_id=seed.subnet_id(subnet_name),
                        cidr=cidr, gateway_ip=gw, host_access=True)  # seeded: the operator's
    await local_network(settings).ensure_subnet(subnet)
    ns, leg = lab.netns("client"), f"lbc{lab.tag}"
    if not await nl.netns_exists(ns):
        await nl.ip("netns", "add", ns)
    await nl.ensure_veth(ns, "eth0", leg, lab.external if flat_public
                         else names.bridge_name(subnet.network_id))
    await nl.ip("link", "set", "dev", leg, "alias", lab.mark)
    await nl.batch(["link set dev lo up", f"addr replace {CLIENT_ADDRESS}/24 dev eth0",
                    f"route replace default via {gw}"], ns=ns)


async def _wait_answering(hosts: list[dict[str, Any]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    for host in hosts:
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(
                    host["address"], HOST_PORT), 1.0)
                writer.close()
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise SystemExit(f"lab: host-agent {host['name']} does not listen; see "
                                     f"its host-agent.log") from None
                await asyncio.sleep(0.1)


async def lab_up(lab: Lab, count: int, flat_public: bool = False) -> list[dict[str, Any]]:
    lab.home.mkdir(parents=True, exist_ok=True)
    old = lab.state()
    if old.get("hosts"):
        raise SystemExit(f"lab: already up in {lab.data_dir} (lbaas lab down first)")
    hosts: list[dict[str, Any]] = []
    state = {"tag": lab.tag, "underlay_link": lab.underlay_link, "switch": lab.switch,
             "hosts": hosts, "flat_public": flat_public}
    (lab.home / "lab.json").write_text(json.dumps(state, indent=1))  # before the first link
    await _ensure_switch(lab)
    if flat_public:
        await _ensure_external(lab)
    for i in range(count):
        name = f"h{i + 1}"
        hosts.append(await _make_host(lab, i, name, ZONES[i % len(ZONES)], flat_public))
        (lab.home / "lab.json").write_text(json.dumps(state, indent=1))
    lab.settings_file.write_text(settings_text(lab, hosts, _free_port(), flat_public))
    await _make_client(lab, flat_public)
    await _wait_answering(hosts)
    return hosts


def _kill_namespace_processes(ns: str, rounds: int = 20) -> None:
    """SIGKILL every process in ``ns`` until none is left (one may be mid-fork)."""
    for _ in range(rounds):
        out = subprocess.run([nl.IP, "netns", "pids", ns], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _kill_processes_under(folder: Path) -> list[int]:
    """SIGKILL processes whose command line or working directory is under ``folder`` (a host's
    directory): amphora agents, HAProxy and keepalived whose namespace lost its name, or one
    started by ``ip netns exec`` while its namespace was being emptied."""
    mark, killed = str(folder.resolve()), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        named = f"{mark}/" in argv or f"{mark} " in f"{argv} "
        if named or cwd == mark or cwd.startswith(f"{mark}/"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


def _host_namespaces(host: dict[str, Any]) -> list[str]:
    """The host's own namespace, its amphorae's and its demo backends' (from its directory)."""
    base = Path(host["base_dir"])
    spaces = []
    if (base / "amphorae").is_dir():
        for home in (base / "amphorae").iterdir():
            if home.name.startswith("amp-"):
                spaces += [home.name, "ampd-" + home.name.removeprefix("amp-")]
    if (base / "backends").is_dir():
        spaces += [p.name for p in (base / "backends").iterdir()
                   if p.name.startswith("lbbe-") and not p.name.endswith(".log")]
    return [*spaces, host["netns"]]


def kill_host(lab: Lab, name: str) -> bool:
    """Stop a host hard: its uplink goes down and every process on it is killed (SIGKILL)."""
    host = next((h for h in lab.state()["hosts"] if h["name"] == name), None)
    if host is None:
        return False
    subprocess.run([nl.IP, "-n", host["netns"], "link", "set", "dev", "ul0", "down"],
                   capture_output=True)
    for ns in _host_namespaces(host):
        _kill_namespace_processes(ns)
    return True


async def _stop_host_agent(host: dict[str, Any]) -> None:
    """SIGTERM the host-agent, wait a little, then kill whatever is left in the host's own
    namespace: nothing there may start another amphora process from now on."""
    pid = int(host.get("pid", 0))
    try:
        if pid and pid in await nl.netns_pids(host["netns"]):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT
            while pid in await nl.netns_pids(host["netns"]) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    except ProcessLookupError:
        pass
    if await nl.netns_exists(host["netns"]):
        _kill_namespace_processes(host["netns"])


async def lab_down(lab: Lab) -> list[str]:
    state = lab.state()
    removed: list[str] = []
    hosts = state.get("hosts", [])
    # every host-agent first: one still building (its controller gone) would start amphora
    # processes in namespaces already emptied, which then outlive their names
    for host in hosts:
        await _stop_host_agent(host)
    for host in hosts:
        spaces = _host_namespaces(host)  # read now: the builds have stopped
        for _ in range(3):
            for ns in spaces:
                _kill_namespace_processes(ns)
            if not _kill_processes_under(Path(host["base_dir"])):
                break
        for ns in spaces:
            if await nl.netns_exists(ns):
                await nl.ip("netns", "delete", ns)
                removed.append(ns)
        await nl.delete_link(lab.external_link(host["name"]))
    client = lab.netns("client")
    if await nl.netns_exists(client):
        _kill_namespace_processes(client)
        await nl.ip("netns", "delete", client)
        removed.append(client)
    await nl.delete_link(f"lbc{lab.tag}")
    if lab.settings_file.exists():
        from lbaas.main.local_plane import teardown_local_plane
        from lbaas.settings import load_settings

        removed += await teardown_local_plane(load_settings(lab.settings_file))
    for link in (lab.external_link("c"), lab.external, lab.underlay_link):
        if await nl.link_exists(link):
            await nl.delete_link(link)
            removed.append(link)
    switch = str(state.get("switch") or lab.switch)  # its ports' peers go with it
    if await nl.netns_exists(switch):
        _kill_namespace_processes(switch)
        await nl.ip("netns", "delete", switch)
        removed.append(switch)
    (lab.home / "lab.json").unlink(missing_ok=True)
    return removed


async def host_call(lab: Lab, host: str, method: str, path: str,
                    body: dict[str, Any] | None = None) -> Any:
    """Call a lab host-agent with the controller's client certificate (made if missing)."""
    from lbaas.certs.ca import CertificateAuthority
    from lbaas.drivers.fleet.client import HostClient
    from lbaas.main.shared_files import shared_files_lock
    from lbaas.settings import load_settings

    entry = next((h for h in lab.state()["hosts"] if h["name"] == host), None)
    if entry is None:
        raise SystemExit(f"lab: no host {host!r}")
    settings = load_settings(overrides={"data_dir": str(lab.data_dir)})
    with shared_files_lock(settings):
        files = CertificateAuthority.load_or_create(settings.pki_dir).ensure_client_files(
            "controller", settings.pki_dir / "client")
    client = HostClient(str(files.ca_file), str(files.cert_file), str(files.key_file))
    try:
        return await client.call(f"{entry['address']}:{HOST_PORT}", method, path, body)
    finally:
        await client.aclose()


async def start_backend(lab: Lab, host: str, address: str, port: int = 80,
                        network: str = "lab-private") -> Any:
    """A demo HTTP backend (``lbaas.demo.backend_server``) on ``host``, on a lab network
    (use an address outside the allocation pool: .201 and up)."""
    from lbaas.drivers.fleet import wire
    from lbaas.store import seed

    spec = next(n for n in NETWORKS if n[0] == network)
    subnet = {"network_id": seed.network_id(spec[0]), "subnet_id": seed.subnet_id(spec[1]),
              "cidr": spec[2], "gateway_ip": spec[3]}
    return await host_call(lab, host, "POST", wire.BACKENDS_PATH,
                           {"subnet": subnet, "address": address, "port": port})


def cmd_lab(args: argparse.Namespace) -> int:
    lab = Lab(Path(args.data_dir or ".lab").absolute())
    if args.lab_command == "up":
        hosts = asyncio.run(lab_up(lab, args.hosts, args.flat_public))
        print(f"lab: {len(hosts)} amphora hosts on underlay {UNDERLAY} (switch namespace "
              f"{lab.switch}, controller {_controller_ip()} on {lab.underlay_link}), "
              f"client namespace {lab.netns('client')} ({CLIENT_ADDRESS} on lab-public)")
        for h in hosts:
            print(f"  {h['name']}: {h['address']}:{HOST_PORT} zone {h['zone']} "
                  f"(namespace {h['netns']})")
        print(f"settings for the controller, in {lab.settings_file}:\n")
        print(lab.settings_file.read_text())
        print(f"run: lbaas serve --config {lab.settings_file}")
        return 0
    if args.lab_command == "backend":
        asyncio.run(start_backend(lab, args.host, args.address, args.port, args.network))
        print(f"lab: backend {args.address}:{args.port} on host {args.host} ({args.network})")
        return 0
    if args.lab_command == "kill-host":
        if not kill_host(lab, args.name):
            print(f"lab: no host {args.name!r}", file=sys.stderr)
            return 1
        print(f"lab: host {args.name} stopped (uplink down, processes killed)")
        return 0
    for item in asyncio.run(lab_down(lab)):
        print(f"removed {item}")
    return 0


def add_lab_parser(sub: Any, command: Any) -> None:
    lp = sub.add_parser("lab", help="simulated amphora hosts on this machine: up, down, "
                        "kill-host", description="A lab fleet of amphora hosts (namespaces).")
    lsub = lp.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    up = command(lsub, "up", cmd_lab, "start N simulated amphora hosts and a client namespace "
                 "(data directory default: .lab)")
    up.add_argument("--hosts", type=int, default=3, help="how many (default: %(default)s)")
    up.add_argument("--flat-public", action="store_true",
                    help="lab-public as a flat provider network: each host (and the "
                    "controller) maps an interface on a lab external bridge, no VXLAN for it "
                    "on the hosts (default: a VXLAN segment)")
    command(lsub, "down", cmd_lab, "stop the lab and remove every namespace, link and process "
            "it made")
    kill = command(lsub, "kill-host", cmd_lab, "stop a host hard (uplink down, processes "
                   "killed), as a power loss")
    kill.add_argument("name", help="the host's name (h1, h2...)")
    be = command(lsub, "backend", cmd_lab, "start a demo HTTP backend on a lab host (a member "
                 "for load balancers; it stops with lab down)")
    be.add_argument("host", help="the host's name (h1, h2...)")
    be.add_argument("address", help="its address (outside the pool: 10.213.10.201 and up)")
    be.add_argument("--port", type=int, default=80, help="its port (default: %(default)s)")
    be.add_argument("--network", default="lab-private", choices=[n[0] for n in NETWORKS[:2]],
                    help="the lab network it is on (default: %(default)s)")
    for parser in lsub.choices.values():
        for action in parser._actions:
            if action.dest == "data_dir":
                action.help = "the lab's data directory (default: .lab in the current directory)"
