"""Outgoing HTTP that goes only to public addresses: the one way calltrack sends a request to a URL an operator typed.

An operator types URLs (webhooks, recordings' destinations ...), so a careless or hostile one could make the server
call itself, the cloud's metadata service (169.254.169.254) or the office network (SSRF). Here:

* only ``http`` and ``https``;
* the host is resolved when the request is made and every address it resolves to is checked; the connection goes
  to the checked address itself (the TLS certificate is still checked against the host name), so a DNS answer that
  changes between a check and the connection (DNS rebinding) cannot get around it;
* loopback, private, link-local, shared (CGNAT), reserved, multicast and unspecified addresses are refused, unless
  ``CALLTRACK_OUTBOUND_ALLOW`` lists them (networks like ``10.1.2.0/24`` or exact host names): private receivers an
  operator really runs;
* redirects are never followed (the answer is the 3xx itself: a caller treats it as a failure), so every hop is a
  request of its own through these checks; environment proxies are not used.

Use :func:`request` for sending and :func:`url_problem` to validate a URL when it is saved (forms, API).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(Exception):
    """The URL may not be called (scheme, or an address that is not public). The message says why."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes  # at most ``max_bytes`` of it

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@lru_cache(maxsize=8)
def _allow_list(entries: tuple[str, ...]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], frozenset[str]]:
    networks, names = [], set()
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return tuple(networks), frozenset(names)


def _allowed() -> tuple[tuple, frozenset[str]]:
    return _allow_list(tuple(settings.CALLTRACK_OUTBOUND_ALLOW or ()))


def address_public(address: Address) -> bool:
    """A global unicast address (IPv4-mapped IPv6 addresses are judged by their IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def address_allowed(address: Address, *, host: str = "") -> bool:
    """Public, or listed in CALLTRACK_OUTBOUND_ALLOW (by network, or by the host name it was reached by)."""
    if address_public(address):
        return True
    networks, names = _allowed()
    if host and host.lower().rstrip(".") in names:
        return True
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    return any(plain in network for network in networks if network.version == plain.version)


def url_problem(url: str) -> str | None:
    """Why ``url`` may never be called, judged without DNS (for a form or API field); None when it may be.

    Refuses other schemes, a missing host, and literal addresses or ``localhost`` names that are not public and not
    allowed. Host names are checked again, resolved, each time a request is sent.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"only http:// and https:// URLs may be called, not {parts.scheme or 'a URL without a scheme'}"
    if not host:
        return "the URL has no host"
    names = _allowed()[1]
    if host.lower().rstrip(".") in names:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".") == "localhost" or host.lower().rstrip(".").endswith(".localhost"):
            return f"{host} is this server itself; list it in CALLTRACK_OUTBOUND_ALLOW if you really run a receiver there"
        return None
    if not address_allowed(address):
        return (
            f"{host} is not a public address (loopback, private, link-local or reserved); "
            "list it in CALLTRACK_OUTBOUND_ALLOW if you really run a receiver there"
        )
    return None


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first allowed address ``host`` resolves to now; OutboundRefused when none is."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    refused: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not address_allowed(address, host=host):
            refused.append(str(address))
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is not None:
        raise last_error
    raise OutboundRefused(
        f"{host} resolves to {', '.join(dict.fromkeys(refused))}, not a public address; "
        "list it in CALLTRACK_OUTBOUND_ALLOW if you really run a receiver there"
    )


def request(
    method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 10,
    max_bytes: int = 2000,
) -> Answer:
    """Send one request to ``url`` through the checks above and answer its status, headers and first ``max_bytes``.

    Raises OutboundRefused (never connected), TimeoutError, or OSError (connection, TLS or protocol errors).
    A redirect is answered as it is, not followed.
    """
    problem = url_problem(url)
    if problem:
        raise OutboundRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    sock = _connect(host, port, timeout)
    try:
        if https:
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = sock  # connected above, to the address that was checked: http.client does not resolve again
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read(max_bytes)
        return Answer(status=response.status, headers={k.lower(): v for k, v in response.getheaders()}, body=data)
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc!r}") from None
    finally:
        sock.close()
