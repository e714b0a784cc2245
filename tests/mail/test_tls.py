"""TLS to a real SMTP server (aiosmtpd with STARTTLS required, a certificate for 127.0.0.1
from a CA made here): trusted through ``MAIL_CA_FILE`` it sends; untrusted, it says so."""
from __future__ import annotations

import ssl

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm_models.entities import Deal
from integrations.mail_models import EmailMessage
from integrations.mail_transport import MailGuard

from .servers import SmtpServer, free_port, make_certs
from .support import add_mailbox


@pytest.fixture()
def tls_smtp(tmp_path):
    ca, cert, key = make_certs(tmp_path)
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
