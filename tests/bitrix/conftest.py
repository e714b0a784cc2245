"""Fixtures for the Bitrix24-compatible API: webhooks for the standard org's users, a helper
to call ``/rest/…`` through the Flask test client, and a real HTTPS server on loopback with a
self-signed certificate for the real client libraries."""
from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from werkzeug.serving import make_server

from crm_models.permissions import system_actor
from integrations.url_guard import UrlGuard
from integrations.webhooks import create_webhook

from ..factories import Org


@dataclass
class Hook:
    user_id: int
    secret: str

    @property
    def path(self) -> str:
        return f"/rest/{self.user_id}/{self.secret}/"


def make_hook(db: Any, user: Any, scopes: Any = None) -> Hook:
    _row, secret = create_webhook(db, system_actor("tests"), user_id=user.id, name="test",
                                  scopes=scopes)
    db.commit()
    return Hook(user.id, secret)


@pytest.fixture()
def admin_hook(db: Any, org: Org) -> Hook:
    return make_hook(db, org.admin)


@pytest.fixture()
def m1_hook(db: Any, org: Org) -> Hook:
    return make_hook(db, org.m1)


class Rest:
    """Calls through the Flask test client; returns (status, JSON body)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(self, hook: Hook, method: str, params: dict[str, Any] | None = None, *,
                 form: Any = None, query: str = "", http: str = "POST") -> tuple[int, Any]:
        url = hook.path + method + (f"?{query}" if query else "")
        if form is not None:
            r = self.client.open(url, method=http, data=form)
        elif http == "GET":
            r = self.client.get(url)
        else:
            r = self.client.open(url, method=http, json=params or {})
        assert r.mimetype == "application/json", r.get_data(as_text=True)[:300]
        return r.status_code, r.get_json()


@pytest.fixture()
def rest(client: Any) -> Rest:
    return Rest(client)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class TlsServer:
    base_url: str  # https://127.0.0.1:<port>
    ca_file: Path

    @property
    def domain(self) -> str:
        return self.base_url.removeprefix("https://")


@pytest.fixture()
def tls_server(app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsServer]:
    """The app served over HTTPS on 127.0.0.1 (a free port) in a thread. The self-signed
    certificate is trusted through the standard variables: ``REQUESTS_CA_BUNDLE`` (requests,
    used by b24pysdk) and ``SSL_CERT_FILE`` (OpenSSL's default paths, used by aiohttp)."""
    cert_file, key_file = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    try:
        yield TlsServer(f"https://127.0.0.1:{server.server_port}", cert_file)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Receiver:
    """A loopback HTTP server that records form posts and answers with scripted statuses."""

    url: str
    guard: UrlGuard  # allow-lists this receiver (loopback) and nothing else
    posts: list[dict[str, str]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # the Host header of each post
    statuses: list[int] = field(default_factory=list)
    got_one: threading.Event = field(default_factory=threading.Event)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            rec = state["rec"]
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode()
            assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
            rec.posts.append({k: v[0] for k, v in parse_qs(body).items()})
            rec.hosts.append(self.headers.get("Host", ""))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            rec.got_one.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["rec"] = Receiver(f"http://127.0.0.1:{server.server_port}/hook",
                            UrlGuard.from_config([f"127.0.0.1:{server.server_port}"]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["rec"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture()
def allowed_receiver(app: Any, receiver: Receiver,
                     monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The receiver, allow-listed in the app as an administrator would
    (``OUTGOING_URL_ALLOWLIST``): the admin pages, the delivery worker and ``webhook.call``
    may post to it. Without this, loopback URLs are refused."""
    monkeypatch.setitem(app.extensions, "url_guard", receiver.guard)
    monkeypatch.setattr(app.extensions["engine"].registry.get("webhook.call"), "guard",
                        receiver.guard)
    monkeypatch.setattr(app.extensions["bitrix_delivery"], "guard", receiver.guard)
    return receiver
