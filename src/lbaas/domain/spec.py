"""The load balancer aggregate render works from: frozen, typed, only what shapes the data plane.

``controller.aggregate.assemble`` builds it once per pass from the store's rows (statuses,
names, dates and the like are left out); render's public functions take a ``LoadBalancerSpec``
and nothing else. Field names are the store's column names. Children are tuples in the order
they were given; render sorts what it walks. JSON columns (``insert_headers``, ``allowed_cidrs``,
``session_persistence``, ``additional_vips``, ...) hold the value as decoded from the store.

No value is checked here: render validates every value it writes (``render.escaping``) and
names the object a refused value came from, so containment can leave that object out. The
annotations say what the store gives; a test may put anything in a field to see render refuse
it. ``from_mapping`` reads a nested mapping (as ``assemble`` once returned, and as tests write
their fixtures); a key that is absent reads as None (``admin_state_up`` of the load balancer as
True), as render read them before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

Json = Any  # a JSON column's value as the store decodes it (list, object or None)


_Spec = TypeVar("_Spec")
# per class, the fields read from a row's columns: all but its children (which have defaults)
_COLUMNS: dict[type, tuple[str, ...]] = {}


def _read(cls: type[_Spec], m: Mapping[str, Any], *children: Any) -> _Spec:
    """``cls`` from a row's columns (None where a key is absent), then ``children``."""
    names = _COLUMNS.get(cls)
    if names is None:
        names = _COLUMNS[cls] = tuple(f.name for f in fields(cls)  # type: ignore[arg-type]
                                      if f.default is MISSING)
    get = m.get
    return cls(*[get(name) for name in names], *children)


def _children(value: Any, build: Callable[[Any], Any]) -> tuple[Any, ...]:
    return tuple(build(x) for x in value) if value else ()


@dataclass(frozen=True, slots=True)
class HealthMonitorSpec:
    id: str
    admin_state_up: bool
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int | None
    http_method: str | None
    url_path: str | None
    expected_codes: str | None
    http_version: float | None
    domain_name: str | None

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> HealthMonitorSpec:
        return _read(cls, m)


@dataclass(frozen=True, slots=True)
class MemberSpec:
    id: str
    admin_state_up: bool
    address: str
    protocol_port: int
    weight: int | None
    backup: bool | None
    monitor_address: str | None
    monitor_port: int | None
    subnet_id: str | None  # not rendered: the provisioner plugs the amphora into it

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> MemberSpec:
        return _read(cls, m)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    id: str
    admin_state_up: bool
    protocol: str
    lb_algorithm: str
    session_persistence: Json  # {"type", "cookie_name", "persistence_timeout"} or None
    tls_enabled: bool | None
    tls_container_ref: str | None
    ca_tls_container_ref: str | None
    crl_container_ref: str | None
    tls_ciphers: str | None
    tls_versions: Json  # list of str
    alpn_protocols: Json  # list of str
    members: tuple[MemberSpec, ...] = ()
    healthmonitor: HealthMonitorSpec | None = None

    @classmethod
    def from_row(cls, m: Mapping[str, Any], members: tuple[MemberSpec, ...] = (),
                 healthmonitor: HealthMonitorSpec | None = None) -> PoolSpec:
        """The pool from its row (or a mapping), with the children given."""
        return _read(cls, m, members, healthmonitor)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> PoolSpec:
        hm = m.get("healthmonitor")
        return cls.from_row(m, _children(m.get("members"), MemberSpec.from_mapping),
                            None if hm is None else HealthMonitorSpec.from_mapping(hm))


@dataclass(frozen=True, slots=True)
class L7RuleSpec:
    id: str
    admin_state_up: bool
    type: str
    compare_type: str
    key: str | None
    value: str
    invert: bool

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> L7RuleSpec:
        return _read(cls, m)


@dataclass(frozen=True, slots=True)
class L7PolicySpec:
    id: str
    admin_state_up: bool
    action: str
    position: int
    redirect_pool_id: str | None
    redirect_url: str | None
    redirect_prefix: str | None
    redirect_http_code: int | None
    rules: tuple[L7RuleSpec, ...] = ()

    @classmethod
    def from_row(cls, m: Mapping[str, Any], rules: tuple[L7RuleSpec, ...] = ()) -> L7PolicySpec:
        return _read(cls, m, rules)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> L7PolicySpec:
        return cls.from_row(m, _children(m.get("rules"), L7RuleSpec.from_mapping))


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    id: str
    admin_state_up: bool
    protocol: str
    protocol_port: int
    connection_limit: int | None
    default_pool_id: str | None
    timeout_client_data: int | None
    timeout_member_connect: int | None
    timeout_member_data: int | None
    timeout_tcp_inspect: int | None
    allowed_cidrs: Json  # list of CIDR strings
    insert_headers: Json  # {header: "true"/"false"}
    default_tls_container_ref: str | None
    sni_container_refs: Json  # list of refs
    client_authentication: str | None
    client_ca_tls_container_ref: str | None
    client_crl_container_ref: str | None
    tls_ciphers: str | None
    tls_versions: Json  # list of str
    alpn_protocols: Json  # list of str
    hsts_max_age: int | None
    hsts_include_subdomains: bool | None
    hsts_preload: bool | None
    l7policies: tuple[L7PolicySpec, ...] = ()  # by position

    @classmethod
    def from_row(cls, m: Mapping[str, Any],
                 l7policies: tuple[L7PolicySpec, ...] = ()) -> ListenerSpec:
        return _read(cls, m, l7policies)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> ListenerSpec:
        return cls.from_row(m, _children(m.get("l7policies"), L7PolicySpec.from_mapping))


@dataclass(frozen=True, slots=True)
class LoadBalancerSpec:
    id: str
    project_id: str | None  # not rendered: whose secrets the certificates are read as
    admin_state_up: bool
    vip_address: str | None
    additional_vips: Json  # list of {"subnet_id", "ip_address"}
    listeners: tuple[ListenerSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()

    @classmethod
    def from_row(cls, m: Mapping[str, Any], listeners: Iterable[ListenerSpec] = (),
                 pools: Iterable[PoolSpec] = ()) -> LoadBalancerSpec:
        get: Callable[..., Any] = m.get
        return cls(get("id"), get("project_id"), get("admin_state_up", True), get("vip_address"),
                   get("additional_vips"), tuple(listeners), tuple(pools))

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> LoadBalancerSpec:
        """The spec of a nested mapping: the load balancer's columns with ``listeners`` (each
        with ``l7policies``, each with ``rules``) and ``pools`` (each with ``members`` and
        ``healthmonitor``)."""
        return cls.from_row(m, _children(m.get("listeners"), ListenerSpec.from_mapping),
                            _children(m.get("pools"), PoolSpec.from_mapping))
