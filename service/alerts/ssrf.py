"""Which webhook URLs parkflow may call: never its own host or the park's internal network
unless the operator allows it.

A tenant writes its webhook URL; the service then makes requests to it from inside the park's
network. Without this check a tenant could point it at ``http://127.0.0.1:8086`` (the
InfluxDB) or a router's admin page and learn from the answers (server-side request forgery).
Every address the host resolves to must be a public one, or inside a network the operator
listed; the check runs when contacts are loaded and again before each send, because what a
name resolves to can change.

Pure but for the resolver, which is a parameter (``system_resolver`` by default).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses


class UnsafeUrl(ValueError):
    """A webhook URL parkflow will not call; the message says why, for the tenant to fix."""


class Unresolvable(UnsafeUrl):
    """The host does not resolve now: maybe a DNS outage, maybe a typo; not a refusal."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"host {host!r} does not resolve: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


def refusal(address: IPAddress) -> str | None:
    """Why an address is not one to call, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
    )
    for what, hit in checks:
        if hit:
            return what
    if not address.is_global:  # shared address space (100.64/10), benchmarking, ...
        return "not a public address"
    return None


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Operator allow-list entries (``10.0.0.0/8``, ``127.0.0.1``) as networks."""
    out: list[Network] = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"allowed network {v!r} is not an address or a network: {exc}"
            ) from exc
    return tuple(out)


def check_webhook_url(
    url: str,
    allowed: Sequence[Network] = (),
    resolve: Resolver | None = system_resolver,
) -> tuple[IPAddress, ...]:
    """The addresses ``url`` reaches, every one of them safe to call; ``UnsafeUrl`` otherwise.

    ``allowed``: networks the operator permits although they are not public (a park's own
    LAN, a receiver on the same host in a test). ``resolve`` None checks the URL's form and a
    literal address only (loading settings: no DNS); a name is then checked when sending."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl(f"{url!r}: the scheme must be https or http, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise UnsafeUrl(f"{url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(f"{url!r}: no user or password in the URL (the signature authenticates)")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    addresses: list[IPAddress] = []
    try:
        addresses.append(ipaddress.ip_address(host))
        literal = True
    except ValueError:
        literal = False
    if not literal and resolve is None:
        return ()
    if not literal:
        assert resolve is not None
        for a in resolve(host, port):
            try:
                addresses.append(ipaddress.ip_address(a.split("%", 1)[0]))  # drop an IPv6 zone
            except ValueError as exc:
                raise UnsafeUrl(f"host {host!r} resolves to {a!r}, not an address") from exc
        if not addresses:
            raise Unresolvable(f"host {host!r} resolves to no address")
    for address in addresses:
        why = refusal(address)
        if why is not None and not any(address in net for net in allowed):
            shown = host if literal else f"{host} ({address})"
            raise UnsafeUrl(
                f"{url!r}: {shown} is {why}; webhooks go to public addresses"
                " unless the operator lists the network in allow_networks"
            )
    return tuple(addresses)
