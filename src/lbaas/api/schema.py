"""Declarative request schemas: one description drives validation, defaults and OpenAPI.

Each field type validates a JSON value and returns the normalised Python value, or raises
``InvalidInput`` with WSME's wording (``Invalid input for field/attribute <f>. Value: '<v>'.
<reason>``). Semantic rules that span fields live in the resource modules.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbaas.api.errors import InvalidInput, UnknownAttribute


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class FieldType:
    def validate(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def openapi(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class String(FieldType):
    max_length: int = 255
    min_length: int = 0

    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidInput(name, value, "Wrong type. Expected '<class 'str'>', got "
                               f"'{type(value)}'")
        if len(value) > self.max_length:
            raise InvalidInput(name, value, f"Value should have a maximum character requirement "
                               f"of {self.max_length}")
        if len(value) < self.min_length:
            raise InvalidInput(name, value, f"Value should have a minimum character requirement "
                               f"of {self.min_length}")
        if "\x00" in value:
            raise InvalidInput(name, value, "Value must not contain NUL characters")
        return value

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length, "minLength": self.min_length}


@dataclass(frozen=True)
class Uuid(FieldType):
    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidInput(name, value, "Value should be UUID format")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise InvalidInput(name, value, "Value should be UUID format") from None

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}


@dataclass(frozen=True)
class Int(FieldType):
    minimum: int | None = None
    maximum: int | None = None

    def validate(self, name: str, value: Any) -> Any:
        if isinstance(value, bool):
            raise InvalidInput(name, value, "Wrong type. Expected '<class 'int'>', got "
                               f"'{type(value)}'")
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise InvalidInput(name, value, "Invalid literal for int() with base 10") from None
        if not isinstance(value, int):
            raise InvalidInput(name, value, "Wrong type. Expected '<class 'int'>', got "
                               f"'{type(value)}'")
        if self.minimum is not None and value < self.minimum:
            raise InvalidInput(name, value, f"Value should be greater or equal to {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidInput(name, value, f"Value should be lower or equal to {self.maximum}")
        return value

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


TRUE_STRINGS = frozenset({"true", "1", "yes", "on", "t", "y"})
FALSE_STRINGS = frozenset({"false", "0", "no", "off", "f", "n"})


def parse_bool(value: Any) -> bool | None:
    """Lenient boolean parsing as oslo's ``bool_from_string``; None when not a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in TRUE_STRINGS:
            return True
        if low in FALSE_STRINGS:
            return False
    return None


@dataclass(frozen=True)
class Bool(FieldType):
    def validate(self, name: str, value: Any) -> Any:
        parsed = parse_bool(value)
        if parsed is None:
            raise InvalidInput(name, value, "Wrong type. Expected '<class 'bool'>', got "
                               f"'{type(value)}'")
        return parsed

    def openapi(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Enum(FieldType):
    values: tuple[Any, ...]

    def validate(self, name: str, value: Any) -> Any:
        for allowed in self.values:
            if type(allowed) is type(value) and value == allowed:
                return value
            if isinstance(allowed, float) and isinstance(value, int | float) \
                    and not isinstance(value, bool) and value == allowed:
                return float(value)
        choices = ", ".join(str(v) for v in self.values)
        raise InvalidInput(name, value, f"Value should be one of: {choices}")

    def openapi(self) -> dict[str, Any]:
        sample = self.values[0]
        kind = "string" if isinstance(sample, str) else (
            "number" if isinstance(sample, float) else "integer")
        return {"type": kind, "enum": list(self.values)}


@dataclass(frozen=True)
class IpAddress(FieldType):
    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidInput(name, value, "Value should be IPv4 or IPv6 format")
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise InvalidInput(name, value, "Value should be IPv4 or IPv6 format") from None
        if getattr(address, "scope_id", None):  # "fe80::1%eth0" names an interface
            raise InvalidInput(name, value, "Value should be IPv4 or IPv6 format")
        # kept as sent, as upstream stores the string; compare with common.canonical_ip
        return value.strip()

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "format": "ip-address"}


@dataclass(frozen=True)
class Cidr(FieldType):
    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidInput(name, value, "Value should be IPv4 or IPv6 CIDR format")
        try:
            if "%" in value:  # a scope id names an interface, never a network
                raise ValueError(value)
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise InvalidInput(name, value, "Value should be IPv4 or IPv6 CIDR format") from None

    def openapi(self) -> dict[str, Any]:
        return {"type": "string"}


# Beyond upstream (no limits there): one request's lists are bounded so that no single request
# can make the API do seconds of database work (docs/security.md). Tags: upstream's API tests
# (octavia-tempest-plugin) create listeners with 100.
MAX_LIST_ITEMS = 1000
MAX_TAGS = 100


@dataclass(frozen=True)
class ListOf(FieldType):
    item: FieldType
    min_items: int = 0
    max_items: int = MAX_LIST_ITEMS

    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise InvalidInput(name, value, "Value should be a list")
        if len(value) < self.min_items:
            raise InvalidInput(name, value, f"Value should contain at least {self.min_items} "
                               "item(s)")
        if len(value) > self.max_items:
            raise InvalidInput(name, f"a list of {len(value)} items",
                               f"Value should contain at most {self.max_items} item(s)")
        return [self.item.validate(name, v) for v in value]

    def openapi(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.openapi(), "minItems": self.min_items,
                "maxItems": self.max_items}


@dataclass(frozen=True)
class StringDict(FieldType):
    max_value_length: int = 255

    def validate(self, name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidInput(name, value, "Value should be a dict")
        for k, v in value.items():
            if not isinstance(v, str) or len(v) > self.max_value_length:
                raise InvalidInput(name, value, "Values should be strings of at most "
                                   f"{self.max_value_length} characters")
            if len(k) > 255:
                raise InvalidInput(name, value, "Keys should be at most 255 characters")
        return dict(value)

    def openapi(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": {"type": "string"}}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    default: Any = UNSET  # applied on create when the key is absent
    nullable: bool = True
    on_create: bool = True
    on_update: bool = True
    aliases: tuple[str, ...] = ()
    # a custom check run after type validation (value) -> value
    check: Callable[[str, Any], Any] | None = None


@dataclass(frozen=True)
class Object(FieldType):
    """A nested JSON object described by fields (session_persistence, graph children...)."""

    fields: tuple[Field, ...]
    name: str = "object"

    def validate(self, name: str, value: Any) -> Any:
        return parse_object(name, value, self.fields, mode="create")

    def openapi(self) -> dict[str, Any]:
        return object_openapi(self.fields, mode="create")


@dataclass(frozen=True)
class Lazy(FieldType):
    """A type defined later (recursive graph schemas)."""

    resolve: Callable[[], FieldType] = field(compare=False)

    def validate(self, name: str, value: Any) -> Any:
        return self.resolve().validate(name, value)

    def openapi(self) -> dict[str, Any]:
        try:
            return self.resolve().openapi()
        except (KeyError, LookupError):  # not plugged in yet: describe it loosely
            return {"type": "object"}


def refuse_unless(reason: Callable[[str], str | None]) -> Callable[[str, Any], Any]:
    """A ``Field.check`` from a rule that returns why a value is refused (or None), such as the
    data plane's rules in ``lbaas.render.validate``."""
    def check(name: str, value: Any) -> Any:
        why = reason(value)
        if why is not None:
            raise InvalidInput(name, value, why)
        return value
    return check


def parse_object(envelope: str, body: Any, fields: Sequence[Field], mode: str) -> dict[str, Any]:
    """Validate one JSON object against ``fields``.

    ``mode`` is ``create`` (apply defaults, check required) or ``update`` (only keys present;
    explicit nulls are kept as None so the resource can apply its reset rules). Unknown keys
    are WSME's ``UnknownAttribute``; the caller names the argument.
    """
    if not isinstance(body, dict):
        raise InvalidInput(envelope, body, "Value should be an object")
    by_name: dict[str, Field] = {}
    for f in fields:
        if (mode == "create" and f.on_create) or (mode == "update" and f.on_update):
            by_name[f.name] = f
            for alias in f.aliases:
                by_name[alias] = f
    unknown = [k for k in body if k not in by_name]
    if unknown:
        raise UnknownAttribute(unknown)
    out: dict[str, Any] = {}
    for key, value in body.items():
        f = by_name[key]
        if value is None:
            if not f.nullable or (mode == "create" and f.required):
                raise InvalidInput(f.name, value, "Mandatory field missing.")
            out[f.name] = None
            continue
        try:
            parsed = f.type.validate(f.name, value)
        except UnknownAttribute as exc:
            exc.add_fieldname(key)
            raise
        if f.check is not None:
            parsed = f.check(f.name, parsed)
        out[f.name] = parsed
    if mode == "create":
        for f in fields:
            if not f.on_create or f.name in out:
                continue
            if f.required:
                raise InvalidInput(f.name, None, "Mandatory field missing.")
            if f.default is not UNSET:
                out[f.name] = f.default() if callable(f.default) else f.default
    return out


# The name of the handler argument upstream's WSME reports in "Unknown attribute for argument
# <argument>.<envelope>"; ``<envelope>_`` unless listed.
ARGUMENT_NAMES = {
    ("loadbalancer", "create"): "load_balancer", ("loadbalancer", "update"): "load_balancer",
    ("healthmonitor", "create"): "health_monitor_", ("healthmonitor", "update"): "health_monitor_",
    ("flavorprofile", "create"): "flavor_profile_", ("flavorprofile", "update"): "flavor_profile_",
    ("quota", "update"): "quotas", ("rule", "update"): "l7rule_",
}


def argument_name(envelope: str, mode: str) -> str:
    return ARGUMENT_NAMES.get((envelope, mode), f"{envelope}_")


def parse_envelope(body: Any, envelope: str, fields: Sequence[Field], mode: str) -> dict[str, Any]:
    argument = argument_name(envelope, mode)
    if not isinstance(body, dict) or envelope not in body:
        raise InvalidInput(envelope, body, "Mandatory field missing.")
    extra = [k for k in body if k != envelope]
    if extra:
        raise UnknownAttribute(extra, argument)
    try:
        return parse_object(envelope, body[envelope], fields, mode)
    except UnknownAttribute as exc:
        exc.add_fieldname(envelope)
        exc.add_fieldname(argument)
        raise


def object_openapi(fields: Sequence[Field], mode: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in fields:
        if (mode == "create" and not f.on_create) or (mode == "update" and not f.on_update):
            continue
        schema = f.type.openapi()
        if f.nullable and not (mode == "create" and f.required):
            schema = {"anyOf": [schema, {"type": "null"}]}
        props[f.name] = schema
        if mode == "create" and f.required:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def envelope_openapi(envelope: str, fields: Sequence[Field], mode: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {envelope: object_openapi(fields, mode)},
        "required": [envelope],
        "additionalProperties": False,
    }


# Common fields reused by several resources.
def name_field(**kw: Any) -> Field:
    return Field("name", String(255), **kw)


def description_field(**kw: Any) -> Field:
    return Field("description", String(255), **kw)


ADMIN_STATE_UP = Field("admin_state_up", Bool(), default=True)
TAGS = Field("tags", ListOf(String(255), max_items=MAX_TAGS), default=list)
PROJECT_ID = Field("project_id", String(36), aliases=("tenant_id",), on_update=False)
