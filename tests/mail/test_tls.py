"""TLS to a real SMTP server (aiosmtpd with STARTTLS required, a certificate for 127.0.0.1
from a CA made here): trusted through ``MAIL_CA_FILE`` it sends; untrusted, it says so."""
from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from crm_models.entities import Deal
from integrations.mail_models import EmailMessage
from integrations.mail_transport import MailGuard

from .servers import SmtpServer, free_port
from .support import add_mailbox


def _cert(tmp: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marshrut test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture()
def tls_smtp(tmp_path):
    ca, cert, key = _cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = SmtpServer(free_port(), "manager1", "smtp-secret")
    server.controller = Controller(server, hostname="127.0.0.1", port=server.port,
                                   tls_context=ctx, require_starttls=True,
                                   authenticator=server._auth, auth_require_tls=True)
    server.controller.start()
    yield server, ca
    server.stop()


def _queue(api, mb, db):
    deal = db.scalars(select(Deal)).first()
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "deal",
                                         "entity_id": deal.id, "to": ["petrov@vector.example"],
                                         "subject": "Защищённое письмо", "body": "Текст"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_starttls_with_a_trusted_certificate_sends(app, db, demo, mail, tls_smtp):
    server, ca = tls_smtp
    mail.guard = app.extensions["mail_guard"] = MailGuard.from_config(
        ["127.0.0.1"], ca_file=str(ca), timeout=5)
    api, mb = add_mailbox(app, db, smtp_port=server.port, smtp_security="starttls")
    assert api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["smtp"]["ok"] is True
    email_id = _queue(api, mb, db)
    assert mail.send_due() == 1
    assert len(server.received) == 1
    db.rollback()
    assert db.get(EmailMessage, email_id).status == "sent"


def test_an_untrusted_certificate_is_named_and_nothing_is_sent(app, db, demo, mail, tls_smtp):
    server, _ca = tls_smtp
    api, mb = add_mailbox(app, db, smtp_port=server.port, smtp_security="starttls")
    result = api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["smtp"]
    assert result["kind"] == "tls" and "not trusted" in result["message"]
    email_id = _queue(api, mb, db)
    assert mail.send_due() == 0
    db.rollback()
    msg = db.get(EmailMessage, email_id)
    assert msg.status == "failed" and "certificate" in msg.last_error
    assert server.received == []
    # Without TLS the server refuses to authenticate: a clear message, not a traceback.
    api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"smtp_security": "none"})
    result = api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["smtp"]
    assert result["ok"] is False and result["kind"] in ("login", "tls"), result
