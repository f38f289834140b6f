"""Where a webhook may point (the SSRF guard): http(s) only, and no private, loopback,
link-local or otherwise non-public address unless `WEBHOOK_ALLOW_PRIVATE` is set.

Checked twice: when the endpoint is saved (the URL's literal address, or what its host
resolves to now) and at every delivery, against the addresses the host resolves to
then; the delivery connects to the address it checked, so a DNS answer that changes
between the check and the connection (rebinding) cannot redirect it.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# A hostname's last label starts with a letter (so `0` or `1.2.3` is never read as a
# host), or the host is an IPv4 literal; IPv6 literals are not accepted.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LAST_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
WEBHOOK_URL_PATTERN = (
    rf"^https?://(?:(?:{_LABEL}\.)*{_LAST_LABEL}|(?:{_OCTET}\.){{3}}{_OCTET})(?::{_PORT})?"
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
)


class AddressRefused(Exception):
    """The webhook's host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string


def target_of(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("A webhook URL must be http:// or https:// with a host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def _refusal(address: str) -> str | None:
    """Why `address` is off limits, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_multicast:
        return "not a public address"
    return None


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _check(host: str, addresses: list[str]) -> None:
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    for address in addresses:
        reason = _refusal(address)
        if reason is not None:
            shown = host if host == address else f"{host} ({address})"
            raise AddressRefused(f"{shown} is {reason}; webhooks may only reach public addresses.")


def webhook_url_check(url: str) -> None:
    """At creation: refuse a URL whose literal address, or any address its host resolves
    to now, is off limits. A host that does not resolve now is accepted: the delivery
    resolves it again and refuses it then if it must."""
    target = target_of(url)
    literal = _literal(target.host)
    if literal is not None:
        _check(target.host, [literal])
        return
    try:
        addresses = _resolve(target.host, target.port)
    except (socket.gaierror, UnicodeError):
        return
    _check(target.host, addresses)


def webhook_address(target: Target) -> str:
    """At delivery: the address to connect to, every address the host resolves to having
    passed the check (raises AddressRefused; OSError when it does not resolve)."""
    literal = _literal(target.host)
    addresses = [literal] if literal is not None else _resolve(target.host, target.port)
    _check(target.host, addresses)
    return addresses[0]
