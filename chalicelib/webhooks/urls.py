"""Which webhook URLs the service may call: checked at registration and before every send.

Only http(s), no credentials, and every address the host resolves to must be public —
so a webhookUrl cannot make the service reach a private network, loopback (the Lambda
runtime API listens on 127.0.0.1:9001) or the instance metadata address.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]

MAX_URL_LENGTH = 2048
# RFC 3986's characters, as openapi.yaml's `format: uri` says: an IRI's others (é, 😀…)
# must arrive percent-encoded, a "%" starts an escape, and "#" comes at most once.
_URI_TEXT = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")

# Not caught by ipaddress's is_global/is_private on every Python: keep them explicit.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)


class UnsafeWebhookUrl(ValueError):
    """The URL is malformed or aims at an address the service must not call."""


class HostUnresolved(UnsafeWebhookUrl):
    """The host's name could not be looked up (no answer, a resolver error, a timeout):
    refused at registration, but at send time only a reason to try again later, since a
    resolver's failure says nothing about the address the name will have."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_private_networks: bool = False
    require_https: bool = False


def system_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA answer for host (IP literals in any spelling resolve locally)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def normalise_ip(text: str) -> IPAddress:
    """Parse an address, dropping an IPv6 zone and unwrapping IPv4-mapped/compatible forms."""
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def is_public(ip: IPAddress) -> bool:
    if any(ip in net for net in _BLOCKED_NETWORKS if net.version == ip.version):
        return False
    return ip.is_global and not ip.is_multicast


def _is_ipv6_literal(host: str) -> bool:
    """urlsplit also takes "[v1.x]" (an IPvFuture) and zone ids, which format: uri does not."""
    if not re.fullmatch("[0-9a-f:.]+", host):
        return False
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def parse_webhook_url(url: str, policy: UrlPolicy) -> tuple[str, str, int]:
    """Syntax rules only (no DNS): returns (scheme, host, port)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeWebhookUrl("webhookUrl must be an absolute http(s) URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UnsafeWebhookUrl("webhookUrl must not contain whitespace or control characters")
    if not _URI_TEXT.fullmatch(url) or url.count("#") > 1:
        raise UnsafeWebhookUrl("webhookUrl must be a URI: ASCII, other characters percent-encoded")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeWebhookUrl(f"webhookUrl is not a valid URL: {exc}") from None
    if any(bracket in parts.path + parts.query + parts.fragment for bracket in "[]"):
        raise UnsafeWebhookUrl("webhookUrl may hold [ ] only around an IPv6 host")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeWebhookUrl("webhookUrl must use http or https")
    if policy.require_https and scheme != "https":
        raise UnsafeWebhookUrl("webhookUrl must use https on this stage")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeWebhookUrl("webhookUrl must not contain credentials")
    host = parts.hostname
    if not host:
        raise UnsafeWebhookUrl("webhookUrl must name a host")
    if "[" in parts.netloc and not _is_ipv6_literal(host):
        raise UnsafeWebhookUrl("webhookUrl may hold [ ] only around an IPv6 address")
    return scheme, host, port or (443 if scheme == "https" else 80)


def check_webhook_url(url: str, policy: UrlPolicy, resolve: Resolver = system_resolver) -> list[IPAddress]:
    """Refuse the URL unless every resolved address is allowed; returns the addresses.

    resolve is injectable so tests prove refusals happen before any connection.
    """
    _, host, port = parse_webhook_url(url, policy)
    if policy.allow_private_networks:
        return []
    try:
        answers = list(resolve(host, port))
    except UnicodeError as exc:  # a name no resolver can take (an empty or over-long label)
        raise UnsafeWebhookUrl(f"webhookUrl host is not a valid name: {host}") from exc
    except OSError as exc:  # socket.gaierror (EAI_AGAIN, EAI_NONAME…), a timeout
        raise HostUnresolved(f"webhookUrl host does not resolve: {host}") from exc
    if not answers:
        raise HostUnresolved(f"webhookUrl host does not resolve: {host}")
    addresses = []
    for answer in answers:
        try:
            ip = normalise_ip(answer)
        except ValueError as exc:
            raise HostUnresolved(f"webhookUrl host resolved to a non-IP answer: {answer}") from exc
        if not is_public(ip):
            raise UnsafeWebhookUrl("webhookUrl points at a private, loopback or reserved address")
        addresses.append(ip)
    return addresses
