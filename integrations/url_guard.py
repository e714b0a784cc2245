"""The guard on URLs that Marshrut posts to (outgoing webhooks, ``webhook.call``): no request
to our own machine, its neighbours or the cloud's metadata service unless an administrator
allow-lists the host (SSRF).

A URL is refused when its scheme is not http/https, or when its host is, or resolves to, a
loopback, link-local, private (RFC 1918, RFC 6598, ULA ``fc00::/7``), unspecified, multicast,
reserved or otherwise non-global address — IPv4 hidden in IPv6 (``::ffff:127.0.0.1``, NAT64,
6to4) and the numeric spellings ``getaddrinfo`` accepts (``2130706433``, ``0177.0.0.1``,
``127.1``) included.

Two checks:

- ``check_url`` when the URL is configured (a handler registered, a diagram deployed): the
  scheme, literal addresses in any spelling and the ``localhost`` names, without DNS.
- ``post_form`` when sending: the host is resolved once, every address it resolves to is
  checked, and the connection goes to that checked address (the ``Host`` header and the TLS
  server name stay the URL's host), so a name that resolves differently a second time (DNS
  rebinding) cannot slip through. Redirects are never followed; a 3xx is reported as it is.

``OUTGOING_URL_ALLOWLIST`` (``host`` or ``host:port`` entries) lets a URL through whatever its
addresses are — for a receiver on the same machine or network that the administrator trusts.
No Flask here: the allow-list comes in as a value.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) → the addresses it resolves to, as text (``getaddrinfo`` by default)
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 1000
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """The URL may not be posted to; ``str(exc)`` says why, for the field's error."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as the socket would use)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _numeric_address(host: str) -> IPAddress | None:
    """``host`` as an address when it is one in any spelling the resolver accepts."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])


def address_problem(address: IPAddress) -> str | None:
    """What kind of address may not be contacted ("a loopback address"), or None for a
    public unicast one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = address_problem(embedded)
            if inner:
                return f"{inner} ({embedded} inside IPv6)"
    for test, what in ((address.is_unspecified, "an unspecified"),
                       (address.is_loopback, "a loopback"),
                       (address.is_link_local, "a link-local"),
                       (address.is_multicast, "a multicast"),
                       (address.is_reserved, "a reserved"),
                       (address.is_private, "a private"),
                       (not address.is_global, "a non-public")):
        if test:
            return f"{what} address"
    return None


@dataclass(frozen=True)
class UrlGuard:
    """The allow-list and the resolver; ``check_url`` and ``post_form`` apply them."""

    allowlist: frozenset[str] = frozenset()
    resolver: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def from_config(cls, value: Any, *, resolver: Resolver = resolve_host) -> UrlGuard:
        """From ``OUTGOING_URL_ALLOWLIST``: a list of ``host`` / ``host:port`` (a single
        string is split on commas)."""
        if value is None or value == "":
            entries: Iterable[Any] = ()
        elif isinstance(value, str):
            entries = value.split(",")
        elif isinstance(value, (list, tuple, set, frozenset)):
            entries = value
        else:
            raise ValueError("OUTGOING_URL_ALLOWLIST must be a list of host or host:port")
        clean = set()
        for entry in entries:
            if not isinstance(entry, str):
                raise ValueError("OUTGOING_URL_ALLOWLIST must be a list of host or host:port")
            if entry.strip():
                clean.add(entry.strip().lower().rstrip("."))
        return cls(frozenset(clean), resolver)

    def allowed(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        shown = f"[{host}]" if ":" in host else host
        return bool({host, shown, f"{shown}:{port}"} & self.allowlist)

    def _parts(self, url: Any) -> tuple[str, str, int]:
        if not isinstance(url, str) or not url.strip():
            raise UrlRefused("must be an http(s) URL")
        url = url.strip()
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefused(f"must be an http(s) URL of at most {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused("must be an http(s) URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise UrlRefused("must be an http(s) URL")
        if any(c.isspace() or ord(c) < 32 for c in url):
            raise UrlRefused("must be an http(s) URL without spaces or control characters")
        scheme = parts.scheme.lower()
        return scheme, parts.hostname, port or (443 if scheme == "https" else 80)

    def check_url(self, url: Any) -> str:
        """The URL, stripped, when it may be configured; else ``UrlRefused`` (no DNS here: a
        name is checked again, resolved, when something is sent)."""
        _scheme, host, port = self._parts(url)
        if self.allowed(host, port):
            return str(url).strip()
        name = host.lower().rstrip(".")
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            raise UrlRefused(f"{host} is this machine (a loopback name); "
                             "an administrator can allow-list the host")
        address = _numeric_address(host)
        if address is not None:
            problem = address_problem(address)
            if problem:
                raise UrlRefused(f"{address} is {problem}; "
                                 "an administrator can allow-list the host")
        return str(url).strip()

    def pinned_address(self, url: str) -> tuple[str, str, int, str]:
        """(scheme, host, port, the checked address to connect to), or ``UrlRefused``."""
        self.check_url(url)
        scheme, host, port = self._parts(url)
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise OSError(f"cannot resolve {host}")
        if not self.allowed(host, port):
            for text in addresses:
                problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
                if problem:
                    raise UrlRefused(f"{host} resolves to {text}, {problem}; "
                                     "an administrator can allow-list the host")
        return scheme, host, port, addresses[0]

    def post_form(self, url: str, fields: dict[str, str], timeout: float, *,
                  user_agent: str = "Marshrut-Webhooks/1") -> tuple[int, str]:
        """POST ``fields`` form-encoded to the checked address of ``url``; (status, reason).
        Raises ``UrlRefused`` before any connection, ``OSError`` for network failures."""
        scheme, host, port, address = self.pinned_address(url)
        parts = urlsplit(url.strip())
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)

        def connect_to_checked(_addr: Any, timeout: Any = None,
                               source_address: Any = None) -> socket.socket:
            return socket.create_connection((address, port), timeout, source_address)

        # http.client connects through this attribute; the Host header and the TLS server
        # name keep using ``host``.
        conn._create_connection = connect_to_checked  # type: ignore[attr-defined]
        try:
            conn.request("POST", target, body=urlencode(fields).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded", "User-Agent": user_agent})
            resp = conn.getresponse()
            resp.read(65536)
            return resp.status, resp.reason
        finally:
            conn.close()
