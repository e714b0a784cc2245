"""SMTP and IMAP connections to a mailbox's servers, through the same SSRF guard as webhooks.

Every failure becomes a :class:`MailError` whose ``kind`` names what failed — ``dns``,
``guard`` (the host is a loopback/private address and not allow-listed), ``connect``
(refused, unreachable), ``timeout``, ``tls`` (handshake, certificate, or a TLS mode the server
does not speak), ``login`` (credentials refused), ``rejected`` (the server refused the message
or a recipient), ``protocol`` — with a message for people and ``retryable`` for the outbox.
Nothing here raises anything else for network trouble, so no traceback reaches a page.

The host is resolved once and checked (``MAIL_HOST_ALLOWLIST`` lets loopback/private hosts
through, e.g. a company mail server on the LAN, or the tests' servers on 127.0.0.1); the
connection goes to that checked address while TLS verifies the configured name.
"""
from __future__ import annotations

import imaplib
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .url_guard import LOCAL_NAMES, Resolver, _numeric_address, address_problem, resolve_host


class MailError(Exception):
    def __init__(self, kind: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: str  # ssl | starttls | none
    login: str
    password: str


@dataclass(frozen=True)
class MailGuard:
    """Which mail hosts may be contacted, and how TLS is verified."""

    allowlist: frozenset[str] = frozenset()
    resolver: Resolver = resolve_host
    ca_file: str | None = None  # extra CA bundle (a company CA; the tests' own)
    timeout: float = 20.0

    @classmethod
    def from_config(cls, allow: Any, *, ca_file: str | None = None,
                    timeout: float = 20.0) -> MailGuard:
        if isinstance(allow, str):
            allow = allow.split(",")
        entries = frozenset(str(e).strip().lower().rstrip(".") for e in (allow or ())
                            if str(e).strip())
        return cls(entries, resolve_host, ca_file or None, float(timeout))

    def allowed(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        return bool({host, f"{host}:{port}"} & self.allowlist)

    def check_host(self, host: str, port: int) -> None:
        """Without DNS (when settings are saved): names and literal addresses."""
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # an IPv6 literal as written in URLs
        if not host or any(c.isspace() or ord(c) < 33 for c in host) or len(host) > 255:
            raise MailError("config", "the host name is empty or invalid", retryable=False)
        if self.allowed(host, port):
            return
        name = host.lower().rstrip(".")
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            raise MailError("guard", f"{host} is this machine; an administrator can "
                            "allow-list the host (MAIL_HOST_ALLOWLIST)", retryable=False)
        address = _numeric_address(host)
        if address is not None and (problem := address_problem(address)):
            raise MailError("guard", f"{host} is {problem}; an administrator can allow-list "
                            "the host (MAIL_HOST_ALLOWLIST)", retryable=False)

    def address(self, host: str, port: int) -> str:
        """The checked address to connect to."""
        self.check_host(host, port)
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise MailError("dns", f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise MailError("dns", f"cannot resolve {host}")
        if not self.allowed(host, port):
            for text in addresses:
                problem = address_problem(ipaddress.ip_address(text.split("%", 1)[0]))
                if problem:
                    raise MailError("guard", f"{host} resolves to {text}, {problem}; an "
                                    "administrator can allow-list the host", retryable=False)
        return addresses[0]

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file:
            ctx.load_verify_locations(self.ca_file)
        return ctx


def _network_error(exc: BaseException, what: str, host: str, port: int) -> MailError:
    where = f"{what} {host}:{port}"
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError("tls", f"{where}: the server's certificate is not trusted "
                         f"({exc.verify_message})", retryable=False)
    if isinstance(exc, ssl.SSLError):
        # OpenSSL's errors carry a reason; ours (made below) carry their text as the argument.
        reason = getattr(exc, "reason", None) or (exc.args[-1] if exc.args else str(exc))
        return MailError("tls", f"{where}: TLS failed ({reason}); check the security mode "
                         "(SSL/TLS, STARTTLS or none) and the port")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return MailError("timeout", f"{where}: no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return MailError("connect", f"{where}: connection refused (is the server running?)")
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionResetError, EOFError)):
        return MailError("connect", f"{where}: the server closed the connection; check the "
                         "security mode and the port")
    if isinstance(exc, OSError):
        return MailError("connect", f"{where}: {exc.strerror or exc}")
    return MailError("protocol", f"{where}: {type(exc).__name__}: {exc}"[:500])


def _silent(exc: BaseException) -> BaseException:
    """A plain-text client on a TLS port waits for a greeting that never comes (the server
    waits for a TLS hello): say so rather than a bare timeout."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ssl.SSLError("no greeting in plain text: the port may expect SSL/TLS")
    return exc


# --- SMTP --------------------------------------------------------------------------------------

class _PinnedSMTP(smtplib.SMTP):
    pinned = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self.pinned, port, timeout)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    pinned = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # SMTP_SSL wraps with server_hostname=self._host: the configured name is verified.
        return super()._get_socket(self.pinned, port, timeout)


@contextmanager
def smtp_session(guard: MailGuard, server: Server) -> Iterator[smtplib.SMTP]:
    """A logged-in SMTP session (``MailError`` for every failure)."""
    address = guard.address(server.host, server.port)
    conn: smtplib.SMTP | None = None
    greeted = False
    try:
        if server.security == "ssl":
            conn = _PinnedSMTPSSL(timeout=guard.timeout, context=guard.tls_context())
        else:
            conn = _PinnedSMTP(timeout=guard.timeout)
        conn.pinned = address  # type: ignore[attr-defined]
        conn._host = server.host  # type: ignore[attr-defined]
        conn.connect(server.host, server.port)
        greeted = True
        conn.ehlo()
        if server.security == "starttls":
            if not conn.has_extn("starttls"):
                raise MailError("tls", f"SMTP {server.host}:{server.port}: the server offers "
                                "no STARTTLS", retryable=False)
            conn.starttls(context=guard.tls_context())
            conn.ehlo()
        if server.login:
            try:
                conn.login(server.login, server.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise MailError("login", f"SMTP {server.host}: the login or password was "
                                f"refused ({exc.smtp_code})", retryable=False) from None
            except smtplib.SMTPNotSupportedError:
                raise MailError("login", f"SMTP {server.host}: the server offers no login "
                                "on this connection (try STARTTLS)", retryable=False) from None
    except MailError:
        _quit(conn)
        raise
    except (OSError, smtplib.SMTPException, EOFError) as exc:
        _quit(conn)
        if not greeted and server.security != "ssl":
            exc = _silent(exc)
        raise _network_error(exc, "SMTP", server.host, server.port) from None
    try:
        yield conn
    finally:
        _quit(conn)


def _quit(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def smtp_send(guard: MailGuard, server: Server, sender: str, recipients: list[str],
              message: bytes) -> None:
    with smtp_session(guard, server) as conn:
        try:
            refused = conn.sendmail(sender, recipients, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError("rejected", "every recipient was refused: "
                            + ", ".join(exc.recipients), retryable=False) from None
        except smtplib.SMTPSenderRefused as exc:
            raise MailError("rejected", f"the sender {sender} was refused ({exc.smtp_code})",
                            retryable=False) from None
        except smtplib.SMTPDataError as exc:
            raise MailError("rejected", f"the message was refused ({exc.smtp_code})",
                            retryable=500 > exc.smtp_code >= 400) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _network_error(exc, "SMTP", server.host, server.port) from None
        if refused:
            raise MailError("rejected", "refused recipients: " + ", ".join(refused),
                            retryable=False)


# --- IMAP --------------------------------------------------------------------------------------

class _PinnedIMAP(imaplib.IMAP4):
    def __init__(self, host: str, port: int, pinned: str, timeout: float) -> None:
        self.pinned = pinned
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return socket.create_connection((self.pinned, self.port), timeout)


class _PinnedIMAPSSL(imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, pinned: str, timeout: float,
                 ctx: ssl.SSLContext) -> None:
        self.pinned = pinned
        super().__init__(host, port, ssl_context=ctx, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = socket.create_connection((self.pinned, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


@contextmanager
def imap_session(guard: MailGuard, server: Server, folder: str) -> Iterator[tuple[Any, int]]:
    """A logged-in IMAP session with ``folder`` selected read-only; (conn, UIDVALIDITY)."""
    address = guard.address(server.host, server.port)
    conn: imaplib.IMAP4 | None = None
    greeted = False
    try:
        if server.security == "ssl":
            conn = _PinnedIMAPSSL(server.host, server.port, address, guard.timeout,
                                  guard.tls_context())
        else:
            conn = _PinnedIMAP(server.host, server.port, address, guard.timeout)
            greeted = True
            if server.security == "starttls":
                conn.starttls(guard.tls_context())
        try:
            conn.login(server.login, server.password)
        except imaplib.IMAP4.error as exc:
            raise MailError("login", f"IMAP {server.host}: the login or password was refused "
                            f"({_text(exc)})", retryable=False) from None
        typ, _data = conn.select(_quote(folder), readonly=True)
        if typ != "OK":
            raise MailError("protocol", f"IMAP {server.host}: no folder {folder!r}",
                            retryable=False)
        uidvalidity = int(conn.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
    except MailError:
        _logout(conn)
        raise
    except (OSError, imaplib.IMAP4.error, EOFError, ValueError) as exc:
        _logout(conn)
        if isinstance(exc, imaplib.IMAP4.abort) and server.security == "none":
            exc = ssl.SSLError("the server expects TLS")
        elif not greeted and server.security != "ssl":
            exc = _silent(exc)
        raise _network_error(exc, "IMAP", server.host, server.port) from None
    try:
        yield conn, uidvalidity
    finally:
        _logout(conn)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return (arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))[:200]


def _logout(conn: imaplib.IMAP4 | None) -> None:
    if conn is None:
        return
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error, EOFError):
        pass


def imap_new_messages(conn: Any, after_uid: int, *, limit: int = 200) -> list[tuple[int, bytes]]:
    """(UID, raw message) of messages with a UID above ``after_uid``, oldest first."""
    typ, data = conn.uid("SEARCH", None, f"UID {after_uid + 1}:*")
    if typ != "OK":
        raise MailError("protocol", "IMAP UID SEARCH failed")
    uids = sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > after_uid)
    out = []
    for uid in uids[:limit]:
        typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            raise MailError("protocol", f"IMAP FETCH of UID {uid} failed")
        raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
        if raw is not None:
            out.append((uid, raw))
    return out


def test_server(guard: MailGuard, kind: str, server: Server, folder: str = "INBOX") -> str:
    """Connect and log in; a short success message, or ``MailError``."""
    if kind == "smtp":
        with smtp_session(guard, server):
            return f"SMTP {server.host}:{server.port}: connected and logged in"
    with imap_session(guard, server, folder) as (_conn, _validity):
        return f"IMAP {server.host}:{server.port}: connected, logged in, {folder} opened"


test_server.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
