"""Decide whether a new haproxy.cfg differs from the running one only in backend server lines,
and if so, which runtime-API commands turn the running state into the new one.

Key choice: be conservative. Anything not provably equivalent (a change outside `server` lines,
quoting or variables in a changed server line, a `default-server` the dynamic server would not
inherit, an address or option change) yields ``None`` and the caller reloads instead. Other
limits (keywords dynamic servers refuse, `del server` with live connections) surface as command
errors, on which the caller also falls back to a reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SECTIONS = frozenset({
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist",
    "mailers", "program", "http-errors", "ring", "cache", "fcgi-app",
})
_WITH_SERVERS = frozenset({"backend", "listen"})
_UNSAFE_CHARS = frozenset("\"'\\$#;")


@dataclass
class _Section:
    header: str
    others: list[str] = field(default_factory=list)  # non-server lines, in order
    servers: dict[str, list[str]] = field(default_factory=dict)  # name -> tokens after name


def _parse(text: str) -> list[_Section] | None:
    sections: list[_Section] = [_Section("")]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        if tokens[0] in _SECTIONS:
            sections.append(_Section(" ".join(tokens)))
            continue
        current = sections[-1]
        kind = current.header.split(" ", 1)[0]
        if tokens[0] == "server" and kind in _WITH_SERVERS and len(tokens) >= 3:
            if tokens[1] in current.servers:
                return None
            current.servers[tokens[1]] = tokens[2:]
        else:
            current.others.append(" ".join(tokens))
    return sections


def _options(tokens: list[str]) -> tuple[list[str], str, bool]:
    """(other options, weight, disabled) from a server line's options."""
    rest: list[str] = []
    weight, disabled = "1", False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "weight" and i + 1 < len(tokens):
            weight = tokens[i + 1]
            i += 2
            continue
        if tok == "disabled":
            disabled = True
        elif tok != "enabled":
            rest.append(tok)
        i += 1
    return rest, weight, disabled


def _safe(tokens: list[str]) -> bool:
    return not any(c in _UNSAFE_CHARS for tok in tokens for c in tok)


def runtime_plan(old_text: str, new_text: str) -> list[str] | None:
    """Stats-socket commands taking ``old_text``'s running state to ``new_text``, or None.

    An empty list means the configs are equivalent. Order: additions, changes, removals, so a
    pool never loses capacity it is about to regain.
    """
    old, new = _parse(old_text), _parse(new_text)
    if old is None or new is None or len(old) != len(new):
        return None
    has_default_server = any(ln.startswith("default-server") for s in new for ln in s.others)
    adds: list[str] = []
    changes: list[str] = []
    removes: list[str] = []
    for before, after in zip(old, new, strict=True):
        if before.header != after.header or before.others != after.others:
            return None
        if before.servers == after.servers:
            continue
        proxy = after.header.split(" ", 1)[1] if " " in after.header else ""
        if has_default_server or not proxy or not _safe([proxy]):
            return None
        for name, tokens in after.servers.items():
            if not _safe([name, *tokens]):
                return None
            target = f"{proxy}/{name}"
            if name not in before.servers:
                rest, weight, disabled = _options(tokens)
                adds.append(f"add server {target} {' '.join([*rest, 'weight', weight])}")
                if "check" in rest:
                    adds.append(f"enable health {target}")
                if "agent-check" in rest:
                    adds.append(f"enable agent {target}")
                if not disabled:
                    adds.append(f"enable server {target}")
                continue
            old_tokens = before.servers[name]
            if old_tokens == tokens:
                continue
            if not _safe(old_tokens):
                return None
            old_rest, old_weight, old_disabled = _options(old_tokens)
            rest, weight, disabled = _options(tokens)
            if old_rest != rest or not weight.isdigit():
                return None  # address, checks, backup...: not changed at runtime here
            if weight != old_weight:
                changes.append(f"set server {target} weight {weight}")
            if disabled != old_disabled:
                changes.append(f"set server {target} state {'maint' if disabled else 'ready'}")
        for name in before.servers.keys() - after.servers.keys():
            if not _safe([name]):
                return None
            target = f"{proxy}/{name}"
            removes += [f"set server {target} state maint", f"shutdown sessions server {target}",
                        f"del server {target}"]
    return adds + changes + removes


def adds_http_server(new_text: str, plan: list[str]) -> bool:
    """Whether ``plan`` adds a server to a backend of ``new_text`` in `mode http`.

    HAProxy 2.6 never reuses idle server connections of a server added at runtime (each
    request opens a new connection to it), so the caller reloads from the file soon after.
    """
    sections = _parse(new_text)
    if sections is None:
        return True
    http: set[str] = set()
    default_mode = "tcp"
    for section in sections:
        kind, _, name = section.header.partition(" ")
        modes = [ln.split()[1] for ln in section.others
                 if ln.startswith("mode ") and len(ln.split()) == 2]
        if kind == "defaults":
            default_mode = modes[-1] if modes else default_mode
        elif kind in _WITH_SERVERS and (modes[-1] if modes else default_mode) == "http":
            http.add(name)
    return any(cmd.startswith("add server ") and cmd.split()[2].rsplit("/", 1)[0] in http
               for cmd in plan)
