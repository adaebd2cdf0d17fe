"""Octavia's vocabulary: statuses, protocols, algorithms and the compatibility maps.

Plain string constants (not Enum) because they travel unchanged between the wire, the database
and templates; the sets below are what validation checks against.
"""

from __future__ import annotations

# provisioning_status
PENDING_CREATE = "PENDING_CREATE"
PENDING_UPDATE = "PENDING_UPDATE"
PENDING_DELETE = "PENDING_DELETE"
ACTIVE = "ACTIVE"
ERROR = "ERROR"
DELETED = "DELETED"
PENDING_STATUSES = frozenset({PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE})

# operating_status
ONLINE = "ONLINE"
OFFLINE = "OFFLINE"
DEGRADED = "DEGRADED"
DRAINING = "DRAINING"
NO_MONITOR = "NO_MONITOR"

# amphora status / role
AMPHORA_BOOTING = "BOOTING"
AMPHORA_ALLOCATED = "ALLOCATED"
AMPHORA_READY = "READY"
ROLE_MASTER = "MASTER"
ROLE_BACKUP = "BACKUP"
ROLE_STANDALONE = "STANDALONE"

TOPOLOGY_SINGLE = "SINGLE"
TOPOLOGY_ACTIVE_STANDBY = "ACTIVE_STANDBY"
TOPOLOGIES = (TOPOLOGY_SINGLE, TOPOLOGY_ACTIVE_STANDBY)

LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS")
POOL_PROTOCOLS = ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP")
LB_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
HEALTH_MONITOR_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH")
HTTP_VERSIONS = (1.0, 1.1)
SESSION_PERSISTENCE_TYPES = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
L7_ACTIONS = ("REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX")
L7_RULE_TYPES = (
    "HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE",
    "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD",
)
L7_COMPARE_TYPES = ("REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")
REDIRECT_HTTP_CODES = (301, 302, 303, 307, 308)
CLIENT_AUTH_MODES = ("NONE", "OPTIONAL", "MANDATORY")
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
ALPN_PROTOCOLS = ("h2", "http/1.1", "http/1.0")
VNIC_NORMAL = "normal"
VNIC_DIRECT = "direct"

SSL_CLIENT_HEADERS = (
    "X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN", "X-SSL-Client-CN",
    "X-SSL-Issuer", "X-SSL-Client-SHA1", "X-SSL-Client-Not-Before", "X-SSL-Client-Not-After",
)
HTTP_INSERT_HEADERS = (
    "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto",
    "X-Forwarded-IP", "X-Client-IP", "X-Real-IP",
)

VALID_LISTENER_POOL_PROTOCOLS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "HTTPS": frozenset({"HTTPS", "PROXY", "PROXYV2", "TCP"}),
    "TCP": frozenset({"HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"}),
    "TERMINATED_HTTPS": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "UDP": frozenset({"UDP"}),
    "SCTP": frozenset({"SCTP"}),
    "PROMETHEUS": frozenset(),
}

L4_PROTOCOL = {
    "TCP": "TCP", "HTTP": "TCP", "HTTPS": "TCP", "TERMINATED_HTTPS": "TCP", "PROMETHEUS": "TCP",
    "UDP": "UDP", "SCTP": "SCTP",
}

UDP_LIKE = frozenset({"UDP", "SCTP"})
UDP_POOL_MONITORS = frozenset({"UDP-CONNECT", "SCTP", "TCP", "HTTP"})
TCP_POOL_MONITORS = frozenset({"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO"})

MAX_L7_RULES_PER_POLICY = 50
MAX_POLICY_POSITION = 2147483647
MAX_TIMEOUT_MS = 2073600000
MAX_QUOTA = 2000000000

NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Provider names as stored on a load balancer (the name asked for, as upstream): "octavia" is
# upstream's alias of "amphora", "noop" ours of "noop_driver". None = a row from before
# providers were stored.
AMPHORA_PROVIDERS = frozenset({"amphora", "octavia"})
NOOP_PROVIDERS = frozenset({"noop_driver", "noop"})


def is_amphora_provider(provider: str | None) -> bool:
    return provider is None or provider in AMPHORA_PROVIDERS
