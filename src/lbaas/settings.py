"""One typed settings tree, read once per process and passed down.

Values come from defaults, then an optional TOML file (``LBAAS_CONFIG`` or ``--config``), then
``LBAAS_*`` environment variables for the few settings people override most. Names follow
upstream Octavia's sections so operators can map their octavia.conf.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

SUITE_B_CIPHERS = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 9876
    auth_strategy: str = "noauth"  # noauth | keystone
    default_project_id: str = "admin"  # noauth: project when neither body nor header names one
    pagination_max_limit: int | None = 1000  # None = infinite
    api_base_uri: str | None = None
    enabled_provider_drivers: dict[str, str] = field(
        default_factory=lambda: {
            "amphora": "The Octavia Amphora driver.",
            "octavia": "Deprecated alias of the Octavia Amphora driver.",
            "noop_driver": "The No-Op driver.",
        }
    )
    default_provider_driver: str = "amphora"
    allow_tls_terminated_listeners: bool = True
    allow_ping_health_monitors: bool = True
    allow_prometheus_listeners: bool = True
    udp_connect_min_interval_health_monitor: int = 3
    default_listener_ciphers: str = SUITE_B_CIPHERS
    default_pool_ciphers: str = SUITE_B_CIPHERS
    default_listener_tls_versions: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    default_pool_tls_versions: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    default_listener_alpn_protocols: tuple[str, ...] = ("h2", "http/1.1", "http/1.0")
    default_pool_alpn_protocols: tuple[str, ...] = ("h2", "http/1.1", "http/1.0")
    # upstream's is empty; ciphers without encryption or authentication, and the level that
    # lets OpenSSL negotiate them (api/cipher_policy.py)
    tls_cipher_prohibit_list: tuple[str, ...] = ("eNULL", "aNULL", "@SECLEVEL=0")
    minimum_tls_version: str | None = None
    healthcheck_enabled: bool = False
    enforce_new_defaults: bool = True
    policy_file: str | None = None
    # The HTTP server (beyond upstream; docs/security.md). A request's line and headers together
    # (431 beyond), the time a client has to send them (408), the time for the body after
    # them (408, or closed if a response has begun), the time a response may wait for a client
    # that reads none of it (closed), open connections (503 beyond), and the threads
    # that run GET requests off the event loop (0 = on the loop).
    max_header_bytes: int = 65536
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    send_timeout: float = 30.0
    max_connections: int = 1000
    read_threads: int = 4
    # noauth makes every caller admin: served only on loopback addresses unless this is set
    allow_noauth_non_loopback: bool = False


@dataclass(frozen=True)
class KeystoneSettings:
    www_authenticate_uri: str = "http://127.0.0.1:5000/v3"
    auth_url: str = "http://127.0.0.1:5000/v3"
    username: str = "octavia"
    password: str = ""
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet_name: str
    cidr: str
    gateway_ip: str
    allocation_start: str
    allocation_end: str


def _default_networks() -> tuple[NetworkSpec, ...]:
    return (
        # devstack's public range: reachable from the host, so a VIP there answers curl
        NetworkSpec("public", "public-subnet", "172.24.4.0/24", "172.24.4.1",
                    "172.24.4.10", "172.24.4.250"),
        NetworkSpec("private", "private-subnet", "10.0.0.0/24", "10.0.0.1",
                    "10.0.0.2", "10.0.0.254"),
        NetworkSpec("lb-mgmt-net", "lb-mgmt-subnet", "198.51.100.0/24", "198.51.100.1",
                    "198.51.100.10", "198.51.100.250"),
    )


@dataclass(frozen=True)
class NetworkingSettings:
    # "local": the networks below and the Neutron subset, with lbaas's IPAM; "noop": as
    # upstream's network_noop_driver, ids this server does not know are accepted as they are
    # (made-up ports and addresses; only with controller.drivers = "fake")
    driver: str = "local"
    allow_vip_network_id: bool = True
    allow_vip_subnet_id: bool = True
    allow_vip_port_id: bool = True
    valid_vip_networks: tuple[str, ...] = ()
    denylist_vip_networks: tuple[str, ...] = ()
    reserved_ips: tuple[str, ...] = ("169.254.169.254",)
    # Octavia's option: True lets users put VIPs and members on networks, subnets and ports
    # they cannot see (the management network stays refused either way)
    allow_invisible_resource_usage: bool = False
    management_network: str = "lb-mgmt-net"  # a seeded network's name, or a network id
    networks: tuple[NetworkSpec, ...] = field(default_factory=_default_networks)
    # False: no managed network gets a host address or route (every bridge isolated; VIPs are
    # then reached only from namespaces on the bridges)
    host_access: bool = True
    # addresses or CIDRs this host uses that lbaas cannot see (a VPN peer, a registry reached
    # by name): a managed subnet containing one stays isolated from the host
    host_used_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ControllerSettings:
    loadbalancer_topology: str = "SINGLE"
    # "local": amphorae are network namespaces on this host running lbaas-agent and HAProxy
    # (needs root and HAProxy); "fake": upstream's noop behaviour; "auto": local when possible.
    drivers: str = "auto"
    # fake drivers only: how long deleting an amphora takes. Upstream's failover flow removes
    # the old amphora last, so a client that reads it right after asking for its failover
    # still finds it; the instant fake would already have replaced it.
    fake_delete_seconds: float = 0.0
    agent_port: int = 9443
    lease_seconds: float = 30.0
    # unfinished load balancers are looked for every half interval and retried when still
    # unfinished at the next look: a lost message costs at most this long
    resync_interval: float = 5.0
    worker_concurrency: int = 8


@dataclass(frozen=True)
class HousekeepingSettings:
    """Upstream's [house_keeping]: purge DELETED rows, rotate amphora certs, full resync."""

    purge_interval: float = 3600.0
    # Octavia: load_balancer_expiry_age and amphora_expiry_age, one week each
    deleted_expiry_seconds: float = 7 * 24 * 3600.0
    cert_rotate_interval: float = 3600.0
    cert_renew_before_days: float = 14.0
    # every live load balancer is re-checked against its amphorae (repairs drift)
    full_resync_interval: float = 600.0


@dataclass(frozen=True)
class HealthSettings:
    """Octavia's [health_manager]: heartbeat receiver, status updates, stale-amphora failover."""

    # "" = generated on first start and kept in shared_dir/heartbeat_key (mode 600). The master
    # key: each amphora signs with its own key, derived from this one and its id
    heartbeat_key: str = field(default="", repr=False)
    # also accept upstream's envelope signed with the master key itself (amphorae built before
    # per-amphora keys hold it; while one of them lives, any of them can speak for all)
    accept_master_key: bool = False
    bind_ip: str = ""  # "" = the management network's gateway address (on this host)
    bind_port: int = 5555
    # Octavia's [health_manager] controller_ip_port_list: every health manager's "HOST:PORT";
    # amphorae send each heartbeat to all of them. () = one, at bind_ip (or the gateway):bind_port
    controller_ip_port_list: tuple[str, ...] = ()
    heartbeat_interval: float = 1.0  # agents send one heartbeat this often
    heartbeat_timeout: float = 3.0  # no heartbeat for this long: the amphora is failed over
    health_check_interval: float = 0.1  # how often stale amphorae are looked for
    # a new amphora (or a just-started health manager) is given this long before staleness
    build_grace: float = 10.0
    # this many stale amphorae at once: no automatic failover (0 = no limit, upstream's None)
    failover_threshold: int = 0
    enabled: bool = True  # only with the local drivers


@dataclass(frozen=True)
class HaproxySettings:
    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0
    default_connection_limit: int = 50000
    # What HAProxy drops to once its sockets are bound and its files read: an unprivileged
    # user and group (group "" = the user's own group) and a chroot into an empty directory of
    # the amphora's run directory. user "" keeps it root (not recommended).
    user: str = "nobody"
    group: str = "nogroup"
    chroot: bool = True


@dataclass(frozen=True)
class CertificateSettings:
    """Octavia's [certificates]: where TLS secrets live.

    ``local``: this server's key-manager API (Barbican subset under /key-manager), payloads
    encrypted with a key generated in data_dir/secrets_key. ``barbican``: a real Barbican at
    ``barbican_endpoint`` (the user's Keystone token on the API, the service's in the controller).
    ``noop``: as upstream's noop_cert_manager, any ref is accepted and nothing is fetched (with
    the fake drivers only: nothing is rendered).
    """

    cert_manager: str = "local"  # local | barbican | noop
    barbican_endpoint: str = ""  # e.g. https://barbican.example:9311 (without /v1)


@dataclass(frozen=True)
class QuotaSettings:
    default_load_balancer_quota: int = -1
    default_listener_quota: int = -1
    default_member_quota: int = -1
    default_pool_quota: int = -1
    default_health_monitor_quota: int = -1
    default_l7policy_quota: int = -1
    default_l7rule_quota: int = -1


@dataclass(frozen=True)
class DatabaseSettings:
    """Octavia's [database]: ``connection`` is an SQLAlchemy URL as octavia.conf writes it."""

    connection: str = field(default="", repr=False)  # "" = SQLite in data_dir


@dataclass(frozen=True)
class MessagingSettings:
    """The message bus between the roles (hints only: load balancer ids).

    ``transport_url`` as in octavia.conf: ``rabbit://user:pass@host:5672/vhost``, several
    hosts separated by commas. "" = no broker: each process reconciles what it learns itself
    and the others converge through the resync scan.
    """

    transport_url: str = field(default="", repr=False)
    topic: str = "lbaas-reconcile"  # queue of reconcile hints; fanout exchange "<topic>-fanout"


@dataclass(frozen=True)
class NeutronQuotaSettings:
    """Neutron's [quotas] defaults for the network subset (``/networking``), per project;
    -1 = unlimited. Enforced on create (not under ``noauth``), overridable per project through
    ``PUT /networking/v2.0/quotas/{project_id}``."""

    quota_network: int = 100
    quota_subnet: int = 100
    quota_port: int = 500
    quota_floatingip: int = 50
    # addresses a project may take on networks it does not own (shared/external: VIPs, their
    # amphora legs, floating IPs, ports); deployment-wide, not settable per project
    quota_shared_address: int = 50


@dataclass(frozen=True)
class FleetSettings:
    """Amphorae on amphora hosts (``lbaas host-agent``) instead of this machine.

    ``hosts``: the host-agents' ``ADDRESS:PORT`` on the underlay; empty = amphorae are local
    namespaces (no fleet). ``underlay_ip``/``underlay_dev``: this controller's address on the
    underlay and its interface, the source of its VXLAN segments (``lbaas lab up`` prints all
    three). ``registration_listen``: ``ADDRESS:PORT`` where host-agents started with
    ``--controller`` register themselves (two-way TLS, host-agent certificates only); "" = off.
    The fleet is on when either is set; registered hosts are polled as the configured ones."""

    hosts: tuple[str, ...] = ()
    registration_listen: str = ""
    underlay_ip: str = ""
    underlay_dev: str = ""
    underlay_mtu: int = 1500
    # network name (or id) -> an interface of this machine plugged into its bridge beside the
    # VXLAN port (flat provider network, decision 0117), e.g. {public = "eth1"}
    provider_interfaces: dict[str, str] = field(default_factory=dict)
    poll_interval: float = 0.5  # how often each host-agent is asked how it is
    host_timeout: float = 1.5  # unanswered this long: the host is down (no new amphorae)

    @property
    def enabled(self) -> bool:
        """Amphorae go to amphora hosts (configured or registering), not local namespaces."""
        return bool(self.hosts or self.registration_listen)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".data")
    # Files every process of a deployment must share: the internal CA (pki/), secrets_key and
    # heartbeat_key. None = data_dir (one machine); several machines: the same copy on each.
    shared_dir: Path | None = None
    # the older spelling of [database] connection (also --database-url, LBAAS_DATABASE_URL):
    # when set, it wins; neither set = SQLite file in data_dir
    database_url: str | None = None
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    messaging: MessagingSettings = field(default_factory=MessagingSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    keystone: KeystoneSettings = field(default_factory=KeystoneSettings)
    networking: NetworkingSettings = field(default_factory=NetworkingSettings)
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    haproxy: HaproxySettings = field(default_factory=HaproxySettings)
    housekeeping: HousekeepingSettings = field(default_factory=HousekeepingSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    neutron_quotas: NeutronQuotaSettings = field(default_factory=NeutronQuotaSettings)
    certificates: CertificateSettings = field(default_factory=CertificateSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)

    @property
    def shared_path(self) -> Path:
        return self.shared_dir if self.shared_dir is not None else self.data_dir

    @property
    def pki_dir(self) -> Path:
        return self.shared_path / "pki"

    @property
    def effective_database_url(self) -> str:
        url = self.database_url or self.database.connection
        if url:
            return normalize_database_url(url)
        return f"sqlite:///{(self.data_dir / 'lbaas.sqlite').resolve()}"


# octavia.conf spellings -> the drivers this package installs (psycopg 3, PyMySQL)
_DRIVER_ALIASES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                   "postgresql+psycopg2": "postgresql+psycopg", "mysql": "mysql+pymysql",
                   "mariadb": "mysql+pymysql", "mariadb+pymysql": "mysql+pymysql"}


def normalize_database_url(url: str) -> str:
    """``mysql://``, ``postgresql://`` and ``postgresql+psycopg2://`` as octavia.conf writes
    them, pointed at the installed drivers; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    return f"{_DRIVER_ALIASES.get(scheme, scheme)}{sep}{rest}" if sep else url


def heartbeat_key(settings: Settings) -> str:
    """``health.heartbeat_key``, or the one generated on first start and kept in shared_dir."""
    if settings.health.heartbeat_key:
        return settings.health.heartbeat_key
    path = settings.shared_path / "heartbeat_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.shared_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _coerce(template: Any, value: Any) -> Any:
    if isinstance(template, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _merge(obj: Any, data: dict[str, Any]) -> Any:
    """Return a copy of dataclass ``obj`` with ``data`` applied; unknown keys are an error."""
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown setting {type(obj).__name__}.{key}")
        current = getattr(obj, key)
        if is_dataclass(current) and isinstance(value, dict):
            changes[key] = _merge(current, value)
        elif key == "networks":
            try:
                changes[key] = tuple(NetworkSpec(**n) for n in value)
            except TypeError as exc:  # a missing or unknown key in a [[networking.networks]]
                raise ValueError(f"networking.networks: {exc}") from None
        elif key in ("data_dir", "shared_dir"):
            changes[key] = Path(value)
        else:
            changes[key] = _coerce(current, value)
    return replace(obj, **changes)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or env.get("LBAAS_CONFIG")
    if path:
        with open(path, "rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: {exc}") from None
        settings = _merge(settings, data)
    env_map: dict[str, Any] = {}
    if env.get("LBAAS_DATA_DIR"):
        env_map["data_dir"] = env["LBAAS_DATA_DIR"]
    if env.get("LBAAS_DATABASE_URL"):
        env_map["database_url"] = env["LBAAS_DATABASE_URL"]
    if env.get("LBAAS_AUTH_STRATEGY"):
        env_map.setdefault("api", {})["auth_strategy"] = env["LBAAS_AUTH_STRATEGY"]
    if env_map:
        settings = _merge(settings, env_map)
    if overrides:
        settings = _merge(settings, overrides)
    return settings
