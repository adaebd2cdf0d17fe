"""SQLAlchemy Core tables: the desired state (what users asked for) and observed state.

Columns carry the API's own names where possible so that the API layer converts little.
List- and dict-valued attributes (vip_sg_ids, sni_container_refs, insert_headers, ...) are JSON
columns: they are always read and written whole. Tags live in their own table so that the four
tag filters run in SQL. Load balancers and amphorae are soft-deleted (``DELETED`` rows are
purged by housekeeping, as upstream); every other object is removed when its delete completes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

ID = 36


def _id() -> Column:
    return Column("id", String(ID), primary_key=True)


# Microseconds are stored (MariaDB needs fsp=6) so "oldest first" is stable; the API shows
# whole seconds as upstream does.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _audit(touch: bool = False) -> list[Column]:
    """``touch``: every UPDATE sets ``updated_at`` (Octavia's objects: upstream's ORM does the
    same, so a status the reconciler or the health manager settles moves it too)."""
    return [
        Column("created_at", Timestamp, nullable=False),
        Column("updated_at", Timestamp, nullable=True, onupdate=_utcnow if touch else None),
    ]


def _statuses() -> list[Column]:
    return [
        Column("provisioning_status", String(16), nullable=False),
        Column("operating_status", String(16), nullable=False),
    ]


load_balancer = Table(
    "load_balancer", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("name", String(255)),
    Column("description", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("topology", String(16)),
    Column("provider", String(64)),
    Column("flavor_id", String(ID)),
    Column("availability_zone", String(255)),
    Column("vip_address", String(64)),
    Column("vip_port_id", String(ID)),
    Column("vip_subnet_id", String(ID)),
    Column("vip_network_id", String(ID)),
    Column("vip_qos_policy_id", String(ID)),
    Column("vip_vnic_type", String(16)),
    Column("vip_sg_ids", JSON),
    Column("additional_vips", JSON),
    Column("generation", Integer, nullable=False, default=0),
    Column("applied_generation", Integer, nullable=False, default=0),
    # x-openstack-request-id of the change not yet applied, for the controller's log lines
    Column("last_request_id", String(64)),
    *_audit(touch=True),
)

listener = Table(
    "listener", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("load_balancer_id", String(ID), ForeignKey("load_balancer.id"), index=True,
           nullable=False),
    Column("name", String(255)),
    Column("description", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("connection_limit", Integer),
    Column("default_pool_id", String(ID), index=True),
    Column("default_tls_container_ref", String(255)),
    Column("sni_container_refs", JSON),
    Column("client_authentication", String(16)),
    Column("client_ca_tls_container_ref", String(255)),
    Column("client_crl_container_ref", String(255)),
    Column("insert_headers", JSON),
    Column("timeout_client_data", BigInteger),
    Column("timeout_member_connect", BigInteger),
    Column("timeout_member_data", BigInteger),
    Column("timeout_tcp_inspect", BigInteger),
    Column("allowed_cidrs", JSON),
    Column("tls_ciphers", String(2048)),
    Column("tls_versions", JSON),
    Column("alpn_protocols", JSON),
    Column("hsts_max_age", Integer),
    Column("hsts_include_subdomains", Boolean),
    Column("hsts_preload", Boolean),
    *_audit(touch=True),
)

pool = Table(
    "pool", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("load_balancer_id", String(ID), ForeignKey("load_balancer.id"), index=True,
           nullable=False),
    Column("name", String(255)),
    Column("description", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("lb_algorithm", String(32), nullable=False),
    Column("session_persistence", JSON),
    Column("tls_enabled", Boolean),
    Column("tls_container_ref", String(255)),
    Column("ca_tls_container_ref", String(255)),
    Column("crl_container_ref", String(255)),
    Column("tls_ciphers", String(2048)),
    Column("tls_versions", JSON),
    Column("alpn_protocols", JSON),
    *_audit(touch=True),
)

member = Table(
    "member", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("pool_id", String(ID), ForeignKey("pool.id"), index=True, nullable=False),
    Column("name", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("address", String(64), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("weight", Integer),
    Column("backup", Boolean),
    Column("subnet_id", String(ID)),
    Column("monitor_address", String(64)),
    Column("monitor_port", Integer),
    Column("vnic_type", String(16)),
    *_audit(touch=True),
)

health_monitor = Table(
    "health_monitor", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("pool_id", String(ID), ForeignKey("pool.id"), unique=True, nullable=False),
    Column("name", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("type", String(16), nullable=False),
    Column("delay", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("max_retries", Integer, nullable=False),
    Column("max_retries_down", Integer),
    Column("http_method", String(16)),
    Column("url_path", String(2048)),
    Column("expected_codes", String(64)),
    Column("http_version", Float),
    Column("domain_name", String(255)),
    *_audit(touch=True),
)

l7policy = Table(
    "l7policy", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("listener_id", String(ID), ForeignKey("listener.id"), index=True, nullable=False),
    Column("name", String(255)),
    Column("description", String(255)),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("action", String(32), nullable=False),
    Column("redirect_pool_id", String(ID), index=True),
    Column("redirect_url", String(2048)),
    Column("redirect_prefix", String(2048)),
    Column("redirect_http_code", Integer),
    Column("position", Integer, nullable=False),
    *_audit(touch=True),
)

l7rule = Table(
    "l7rule", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("l7policy_id", String(ID), ForeignKey("l7policy.id"), index=True, nullable=False),
    *_statuses(),
    Column("admin_state_up", Boolean, nullable=False),
    Column("type", String(32), nullable=False),
    Column("compare_type", String(32), nullable=False),
    Column("key", String(255)),
    Column("value", String(255), nullable=False),
    Column("invert", Boolean, nullable=False),
    *_audit(touch=True),
)

tag = Table(
    "tag", metadata,
    Column("resource_id", String(ID), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Index("ix_tag_tag", "tag"),
)

quota = Table(
    "quota", metadata,
    Column("project_id", String(36), primary_key=True),
    Column("load_balancer", Integer),
    Column("listener", Integer),
    Column("pool", Integer),
    Column("health_monitor", Integer),
    Column("member", Integer),
    Column("l7policy", Integer),
    Column("l7rule", Integer),
)

# Neutron's per-project quotas for the network subset (null = the [neutron_quotas] default).
network_quota = Table(
    "network_quota", metadata,
    Column("project_id", String(36), primary_key=True),
    Column("network", Integer),
    Column("subnet", Integer),
    Column("port", Integer),
    Column("floatingip", Integer),
)

# One row per project that ever created under a quota: locked (FOR UPDATE) while a create counts
# and inserts, so concurrent creates in several API processes cannot pass the same limit.
quota_lock = Table(
    "quota_lock", metadata,
    Column("project_id", String(36), primary_key=True),
)

flavor_profile = Table(
    "flavor_profile", metadata, _id(),
    Column("name", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("flavor_data", String(4096), nullable=False),
)

flavor = Table(
    "flavor", metadata, _id(),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255)),
    Column("enabled", Boolean, nullable=False),
    Column("flavor_profile_id", String(ID), ForeignKey("flavor_profile.id"), nullable=False),
)

availability_zone_profile = Table(
    "availability_zone_profile", metadata, _id(),
    Column("name", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("availability_zone_data", String(4096), nullable=False),
)

availability_zone = Table(
    "availability_zone", metadata,
    Column("name", String(255), primary_key=True),
    Column("description", String(255)),
    Column("enabled", Boolean, nullable=False),
    Column("availability_zone_profile_id", String(ID),
           ForeignKey("availability_zone_profile.id"), nullable=False),
)

amphora = Table(
    "amphora", metadata, _id(),
    Column("load_balancer_id", String(ID), index=True),
    Column("compute_id", String(255)),
    Column("lb_network_ip", String(64)),
    Column("vrrp_ip", String(64)),
    Column("ha_ip", String(64)),
    Column("vrrp_port_id", String(ID)),
    Column("ha_port_id", String(ID)),
    Column("cert_expiration", DateTime),
    Column("cert_busy", Boolean, nullable=False, default=False),
    Column("role", String(16)),
    Column("status", String(36), nullable=False),
    Column("vrrp_interface", String(16)),
    Column("vrrp_id", Integer),
    Column("vrrp_priority", Integer),
    Column("cached_zone", String(255)),
    Column("image_id", String(ID)),
    Column("compute_flavor", String(255)),
    Column("active_digest", String(128)),
    Column("last_heartbeat", DateTime),
    # sequence number of the last accepted heartbeat: older or equal ones are replays
    Column("heartbeat_seq", BigInteger),
    Column("failover_requested", Boolean, nullable=False, default=False),
    *_audit(),
)

listener_statistics = Table(
    "listener_statistics", metadata,
    Column("listener_id", String(ID), primary_key=True),
    Column("amphora_id", String(ID), primary_key=True),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    Column("active_connections", Integer, nullable=False, default=0),
    Column("total_connections", BigInteger, nullable=False, default=0),
    Column("request_errors", BigInteger, nullable=False, default=0),
    # the heartbeat whose deltas this row last added: older or equal ones add nothing
    Column("heartbeat_seq", BigInteger),
)

# Neutron-compatible subset: the networks lbaas manages. Neutron's standard attributes
# (description, revision_number) are columns; list-valued ones are JSON read and written whole;
# tags share the ``tag`` table with the load-balancer objects (ids are UUIDs, never shared).
def _neutron_standard() -> list[Column]:
    return [
        Column("description", String(255)),
        Column("revision_number", Integer, nullable=False, default=0, server_default="0"),
    ]


network = Table(
    "network", metadata, _id(),
    Column("project_id", String(36)),
    Column("name", String(255)),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("shared", Boolean, nullable=False, default=True),
    Column("router_external", Boolean, nullable=False, default=False),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    *_neutron_standard(),
    *_audit(),
)

subnet = Table(
    "subnet", metadata, _id(),
    Column("project_id", String(36)),
    Column("network_id", String(ID), ForeignKey("network.id"), index=True, nullable=False),
    Column("name", String(255)),
    Column("cidr", String(64), nullable=False),
    Column("ip_version", Integer, nullable=False),
    Column("gateway_ip", String(64)),
    Column("allocation_pools", JSON, nullable=False),
    # stored and shown, as Neutron's DHCP agent would serve them; lbaas runs no DHCP
    Column("enable_dhcp", Boolean, nullable=False, default=True, server_default=true()),
    Column("dns_nameservers", JSON),
    Column("host_routes", JSON),
    Column("ipv6_ra_mode", String(16)),
    Column("ipv6_address_mode", String(16)),
    *_neutron_standard(),
    *_audit(),
)

port = Table(
    "port", metadata, _id(),
    Column("project_id", String(36)),
    Column("network_id", String(ID), ForeignKey("network.id"), index=True, nullable=False),
    Column("name", String(255)),
    Column("device_id", String(255)),
    Column("device_owner", String(255)),
    Column("fixed_ips", JSON, nullable=False),
    Column("mac_address", String(32)),
    Column("qos_policy_id", String(ID)),
    Column("admin_state_up", Boolean, nullable=False, default=True, server_default=true()),
    Column("port_security_enabled", Boolean),  # None: the network's setting when created
    Column("allowed_address_pairs", JSON),
    Column("vnic_type", String(64)),
    *_neutron_standard(),
    *_audit(),
)

ip_allocation = Table(
    "ip_allocation", metadata,
    Column("subnet_id", String(ID), primary_key=True),
    Column("ip_address", String(64), primary_key=True),
    Column("port_id", String(ID), index=True, nullable=False),
)

floating_ip = Table(
    "floating_ip", metadata, _id(),
    Column("project_id", String(36)),
    Column("floating_network_id", String(ID), nullable=False),
    Column("floating_ip_address", String(64), nullable=False),
    Column("port_id", String(ID)),
    Column("fixed_ip_address", String(64)),
    *_audit(),
)

# One worker at a time holds a load balancer; an expired lease may be taken over.
# The configuration the data plane last accepted, per load balancer: its objects as flat rows
# by table name. An object in ERROR is rendered from here (or left out when it was never
# accepted), so it cannot block the rest (docs/decisions/0013-contain-refused-objects.md).
accepted_config = Table(
    "accepted_config", metadata,
    Column("load_balancer_id", String(ID), primary_key=True),
    Column("objects", JSON, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

lease = Table(
    "lease", metadata,
    Column("load_balancer_id", String(ID), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Double, nullable=False),  # epoch seconds: MariaDB's FLOAT is too coarse
)

# Amphora hosts: what each host-agent announces (name, zone, capacity) and the operator's
# state (ENABLED, DRAINING); last_seen is the controller's last answer from it. A host that
# registered itself (``--controller``) has its API port and registered_at (its last announcement
# that changed something, refreshed every minute); every worker polls those rows' address:port
# besides the configured ``[fleet] hosts``.
fleet_host = Table(
    "fleet_host", metadata,
    Column("name", String(64), primary_key=True),
    Column("address", String(64), nullable=False),
    Column("zone", String(255), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("amphorae", Integer, nullable=False),
    Column("last_seen", Timestamp),
    Column("port", Integer),
    Column("registered_at", Timestamp),
)

secret = Table(
    "secret", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("name", String(255)),
    # Fernet token of the payload bytes (key in data_dir/secrets_key), never the plain bytes.
    Column("payload", Text),
    Column("content_type", String(255)),
    Column("secret_type", String(32)),
    Column("algorithm", String(255)),
    Column("bit_length", Integer),
    Column("mode", String(255)),
    Column("expiration", Timestamp),
    Column("creator_id", String(255)),
    *_audit(),
)

# Barbican containers: named references to secrets (certificate: certificate, private_key,
# private_key_passphrase, intermediates).
secret_container = Table(
    "secret_container", metadata, _id(),
    Column("project_id", String(36), index=True),
    Column("name", String(255)),
    Column("type", String(32), nullable=False),
    Column("secret_refs", JSON, nullable=False),  # [{"name": .., "secret_id": ..}]
    Column("creator_id", String(255)),
    *_audit(),
)
