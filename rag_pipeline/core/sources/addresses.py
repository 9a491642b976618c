"""Which addresses a fetch may reach: global ones, and the hosts an operator allows.

An address is refused when it is not one the public internet routes: private, loopback,
link-local, unspecified, multicast, reserved, shared (carrier-grade NAT) or documentation
space. IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`,
NAT64's `64:ff9b::/96`) are judged by the IPv4 address they carry.

The allow-list (RAG_FETCH_ALLOW_HOSTS) names hosts, each `host` (any port) or `host:port`
(`[v6]:port` for an IPv6 literal), matched against the URL's host as written, never against
what it resolves to: allowing `10.0.0.5` does not allow a name that resolves there.
"""

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Checked in this order, so the most telling word names an address.
_KINDS = (
    ("unspecified", "is_unspecified"),
    ("loopback", "is_loopback"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("reserved", "is_reserved"),
    ("private", "is_private"),
)


class AllowListError(ValueError):
    """An allow-list entry that names no host."""


def carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the forms that reach it."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: str) -> str | None:
    """Why a fetch may not connect to `address` (e.g. "loopback"), or None if it may."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    inner = carried_ipv4(ip)
    if inner is not None:
        reason = refusal(str(inner))
        return f"{reason} (as {address})" if reason else None
    for kind, test in _KINDS:
        if getattr(ip, test):
            return kind
    return None if ip.is_global else "not globally routable"


def _host_key(host: str) -> str:
    """A host as the allow-list compares it: lower case, no trailing dot, an IP literal in its
    one canonical form, a name in its ASCII (IDNA) form, as a URL's host is resolved."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _entry(text: str) -> tuple[str, int | None]:
    """One entry: (host, port), the port None when any is allowed."""
    text = text.strip()
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise AllowListError(f"{text!r}: expected [address]:port")
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise AllowListError(f"{text!r}: {port!r} is not a port")
    key = _host_key(host)
    if not key or any(ch in key for ch in "/@ "):
        raise AllowListError(f"{text!r} names no host")
    return key, int(port) if port else None


@dataclass(frozen=True)
class AllowList:
    """Hosts a fetch may reach whatever they resolve to: `host` (any port) or `host:port`."""

    entries: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "AllowList":
        """Comma-separated entries; AllowListError names one that is not a host."""
        return cls(frozenset(_entry(part) for part in text.split(",") if part.strip()))

    def permits(self, host: str, port: int) -> bool:
        key = _host_key(host)
        return (key, None) in self.entries or (key, port) in self.entries
