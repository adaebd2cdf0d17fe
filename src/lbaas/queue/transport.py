"""octavia.conf's ``transport_url`` -> one AMQP URL per broker host.

``rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost?options`` is oslo.messaging's form
(several hosts, each with its own credentials; a host without them borrows the first one's).
``amqp://`` and ``amqps://`` URLs are taken as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = {"rabbit": "amqp", "amqp": "amqp", "amqps": "amqps", "rabbits": "amqps"}


def amqp_urls(transport_url: str) -> list[str]:
    scheme, sep, rest = transport_url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"messaging.transport_url must start with rabbit:// (got "
                         f"{redacted(transport_url)!r})")
    netlocs, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    hosts = [h for h in netlocs.split(",") if h]
    if not hosts:
        raise ValueError("messaging.transport_url names no host")
    creds = hosts[0].rpartition("@")[0]
    urls = []
    for host in hosts:
        if "@" not in host and creds:
            host = f"{creds}@{host}"
        urls.append(urlunsplit((SCHEMES[scheme], host, "/" + path, query, "")))
    return urls


def redacted(url: str) -> str:
    """The URL without its password (for logs)."""
    try:
        parts = urlsplit(url.split(",")[0])
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))
