"""Sending from a record through a real SMTP server (aiosmtpd on 127.0.0.1): the exact MIME,
the invoice PDF, the timeline, and failures that are reported, kept and retried."""
from __future__ import annotations

import datetime as dt
import email
import email.policy

from sqlalchemy import select, update

from crm_models.activity import Activity, OutboxEvent
from crm_models.entities import Deal
from crm_models.invoices import Invoice
from integrations.mail_models import EmailMessage

from .servers import SmtpServer, free_port
from .support import add_mailbox


def _invoice(db):
    return db.scalars(select(Invoice)).one()


def test_invoice_send_puts_the_exact_mime_on_the_server(app, db, demo, mail, smtp):
    inv = _invoice(db)
    api, _mb = add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local",
                           email="head@demo.local")
    r = api.post(f"/api/v1/invoices/{inv.id}/send", json={"lang": "ru"})
    assert r.status_code == 201, r.get_json()
    queued = r.get_json()
    assert queued["status"] == "queued" and queued["to"] == ["petrov@vector.example"]
    db.rollback()
    assert db.get(Invoice, inv.id).stage == "draft"  # not before it went out

    assert mail.send_due() == 1
    [got] = smtp.received
    assert got.rcpt_tos == ["petrov@vector.example"]
    assert got.mail_from == "head@demo.local"
    raw = got.data
    assert b"\xd0" not in raw.split(b"\r\n\r\n", 1)[0]  # headers are 7-bit (RFC 2047 words)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == f"Счёт № {inv.number} от {inv.issued_on.isoformat()}"
    assert parsed["From"].addresses[0].display_name == "Иван Менеджеров"
    assert parsed["Message-ID"] == queued["message_id"]
    body = parsed.get_body(("plain",)).get_content()
    assert "Пётр" in body or "Петров" in body
    [pdf] = list(parsed.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == f"invoice-{inv.year}-{inv.seq}.pdf"
    assert pdf.get_payload(decode=True).startswith(b"%PDF")

    db.rollback()
    db.rollback()
    db.expire_all()
    msg = db.get(EmailMessage, queued["id"])
    assert msg.status == "sent" and msg.attempts == 1
    assert db.get(Invoice, inv.id).stage == "sent"
    act = db.get(Activity, msg.activity_id)
    assert (act.type, act.entity_type, act.entity_id, act.done) == ("email", "deal",
                                                                    inv.deal_id, True)
    types = set(db.scalars(select(OutboxEvent.event_type)))
    assert {"email.queued", "email.sent", "invoice.stage_changed"} <= types
    # The PDF that went out is kept with the message and downloadable with the read right.
    [att] = api.get(f"/api/v1/emails/{msg.id}").get_json()["attachments"]
    r = api.get(f"/api/v1/emails/attachments/{att['id']}")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")


def test_template_placeholders_in_english_and_a_cyrillic_subject(app, db, demo, mail, smtp):
    deal = db.scalars(select(Deal).where(Deal.title == "Сервисный контракт")).one()
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local",
                          email="head@demo.local")
    r = api.post("/api/v1/emails", json={
        "mailbox_id": mb["id"], "entity_type": "deal", "entity_id": deal.id,
        "to": ["petrov@vector.example"], "template": "follow_up", "lang": "en"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["subject"] == "Сервисный контракт: next step"
    assert mail.send_due() == 1
    parsed = email.message_from_bytes(smtp.received[0].data, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Сервисный контракт: next step"
    assert "\"Сервисный контракт\"" in parsed.get_body(("plain",)).get_content()


def test_bad_input_is_a_clear_422(app, db, demo, mail, smtp):
    deal = db.scalars(select(Deal)).first()
    api, mb = add_mailbox(app, db, smtp_port=smtp.port)
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "deal",
                                         "entity_id": deal.id, "to": ["not an address"],
                                         "subject": "", "body": "x"})
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert "to" in fields and fields["subject"] == "is required"
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "pipeline",
                                         "entity_id": 1, "to": ["a@b.example"],
                                         "subject": "s"})
    assert r.status_code == 422 and "entity_type" in r.get_json()["error"]["fields"]


def _queue(api, mb, db, subject="Проверка"):
    deal = db.scalars(select(Deal)).first()
    r = api.post("/api/v1/emails", json={"mailbox_id": mb["id"], "entity_type": "deal",
                                         "entity_id": deal.id, "to": ["petrov@vector.example"],
                                         "subject": subject, "body": "Текст"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_server_down_is_retried_later_and_nothing_is_lost(app, db, demo, mail):
    port = free_port()  # nobody listens here yet
    api, mb = add_mailbox(app, db, smtp_port=port)
    email_id = _queue(api, mb, db)
    assert mail.send_due() == 0
    db.rollback()
    db.expire_all()
    msg = db.get(EmailMessage, email_id)
    assert msg.status == "queued" and msg.attempts == 1
    assert msg.last_error.startswith("connect: SMTP 127.0.0.1:") and "refused" in msg.last_error
    assert msg.next_attempt_at > dt.datetime.now(dt.UTC)
    assert mail.send_due() == 0  # not due yet: the back-off holds
    server = SmtpServer(port, "manager1", "smtp-secret").start()
    try:
        db.execute(update(EmailMessage).values(next_attempt_at=dt.datetime.now(dt.UTC)))
        db.commit()
        assert mail.send_due() == 1
        assert len(server.received) == 1
    finally:
        server.stop()
    db.rollback()
    db.expire_all()
    assert db.get(EmailMessage, email_id).status == "sent"


def test_wrong_password_fails_clearly_and_retry_sends(app, db, demo, mail, smtp):
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, password="wrong")
    email_id = _queue(api, mb, db)
    assert mail.send_due() == 0
    db.rollback()
    db.expire_all()
    msg = db.get(EmailMessage, email_id)
    assert msg.status == "failed" and msg.last_error.startswith("login: SMTP 127.0.0.1:")
    page = api.get(f"/api/v1/emails?entity_type=deal&entity_id={msg.entity_id}").get_json()
    assert page["items"][0]["status"] == "failed"
    assert api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}",
                    json={"password": "smtp-secret"}).status_code == 200
    assert api.post(f"/api/v1/emails/{email_id}/retry").status_code == 200
    assert mail.send_due() == 1
    db.rollback()
    db.expire_all()
    assert db.get(EmailMessage, email_id).status == "sent"
    assert len(smtp.received) == 1


def test_tls_mismatch_is_named(app, db, demo, mail, smtp):
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, smtp_security="ssl")
    email_id = _queue(api, mb, db)
    assert mail.send_due() == 0
    db.rollback()
    db.expire_all()
    msg = db.get(EmailMessage, email_id)
    assert msg.status == "queued" and msg.last_error.startswith("tls: SMTP 127.0.0.1")
    r = api.post(f"/api/v1/mailboxes/{mb['id']}/test")
    assert r.status_code == 200
    assert r.get_json()["smtp"]["ok"] is False and r.get_json()["smtp"]["kind"] == "tls"
    r = api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"smtp_security": "starttls"})
    assert r.status_code == 200
    result = api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["smtp"]
    assert result == {"ok": False, "kind": "tls", "message": result["message"]}
    assert "STARTTLS" in result["message"]
    assert smtp.received == []
