"""Mailbox settings: the password encrypted at rest, the host guard, who may configure the
shared mailbox; the BPMN operation ``mail.send``; the pages in Russian."""
from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from automation.mail_operations import mail_operations
from crm_models.entities import Deal
from crm_models.invoices import Invoice
from engine.errors import ServiceCallError
from engine.ports import ProcessContext
from integrations.mail_crypto import PasswordBox, PasswordUnreadable
from integrations.mail_models import EmailMessage, Mailbox
from tests.automation.support import api_as

from .support import add_mailbox


def test_the_password_is_encrypted_at_rest(app, db, demo, mail, smtp):
    _api, mb = add_mailbox(app, db, smtp_port=smtp.port, password="пароль-123")
    assert "password" not in mb and mb["password_set"] is True
    db.rollback()
    stored = db.get(Mailbox, mb["id"]).password_enc
    assert "пароль" not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert app.extensions["mail_box"].decrypt(stored) == "пароль-123"
    with pytest.raises(PasswordUnreadable):
        PasswordBox("another key").decrypt(stored)
    # A dedicated MAIL_KEY gives another key than the secret key.
    assert PasswordBox("k1").encrypt("x") != PasswordBox("k2").encrypt("x")


def test_loopback_hosts_need_the_allow_list(app, db, demo):
    api = api_as(app, db, "manager1@demo.local")
    for host in ("127.0.0.1", "localhost", "10.0.0.5", "[::1]"):
        r = api.post("/api/v1/mailboxes", json={"email": "m@demo.local", "smtp_host": host,
                                                "smtp_port": 25, "smtp_security": "none"})
        assert r.status_code == 422, host
        assert "allow-list" in r.get_json()["error"]["fields"]["smtp_host"] or \
            "invalid" in r.get_json()["error"]["fields"]["smtp_host"]


def test_only_admins_configure_the_shared_mailbox(app, db, demo, mail, smtp):
    api = api_as(app, db, "manager1@demo.local")
    r = api.post("/api/v1/mailboxes", json={
        "shared": True, "email": "sales@demo.local", "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port, "smtp_security": "none"})
    assert r.status_code == 403
    r = api.post("/api/v1/mailboxes", json={"email": "x", "smtp_host": "", "smtp_port": 0,
                                            "smtp_security": "rot13"})
    assert r.status_code == 422
    assert set(r.get_json()["error"]["fields"]) == {"email", "smtp_host", "smtp_port",
                                                     "smtp_security"}
    r = api.post("/api/v1/mailboxes", json={"email": "m@demo.local", "actor": 1})
    assert r.status_code == 422 and "actor" in r.get_json()["error"]["fields"]


def test_dns_failure_is_named(app, db, demo, mail):
    from integrations.mail_transport import MailError, MailGuard, Server, test_server

    guard = MailGuard(resolver=lambda host, port: (_ for _ in ()).throw(
        OSError("Name or service not known")))
    with pytest.raises(MailError) as exc:
        test_server(guard, "smtp", Server("mail.nowhere.invalid", 25, "none", "", ""))
    assert exc.value.kind == "dns" and "mail.nowhere.invalid" in exc.value.message


def test_the_bpmn_operation_queues_a_templated_mail_with_the_invoice(app, db, demo, mail,
                                                                     smtp):
    [op] = mail_operations()
    inv = db.scalars(select(Invoice)).one()
    add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local", email="head@demo.local")
    db.rollback()
    ctx = ProcessContext("billing", 1, 9, "Task_Mail", "deal", inv.deal_id)
    out = op(db, ctx, {"template": "invoice", "lang": "en", "attach_invoice": "true"}, {})
    db.commit()
    assert out["email"]["to"] == ["petrov@vector.example"]
    assert mail.send_due() == 1
    parsed = email.message_from_bytes(smtp.received[0].data, policy=email.policy.default)
    assert str(parsed["Subject"]).startswith(f"Invoice No. {inv.number}")
    assert [a.get_content_type() for a in parsed.iter_attachments()] == ["application/pdf"]
    db.rollback()
    assert db.get(Invoice, inv.id).stage == "sent"
    msg = db.get(EmailMessage, out["email"]["id"])
    assert msg.entity_type == "deal" and msg.status == "sent"
    with pytest.raises(ServiceCallError) as exc:
        op(db, ctx, {"to": "nobody"}, {})
    assert "to" in exc.value.fields


def test_pages_in_russian(app, db, demo, mail, smtp, auth, client):
    _api, mb = add_mailbox(app, db, smtp_port=smtp.port)
    deal = db.scalars(select(Deal).where(Deal.responsible_id == demo.m1.id)).first()
    db.rollback()
    auth.login("manager1@demo.local")
    html = client.get("/mail/").get_data(as_text=True)
    assert "Почтовые ящики" in html and "Работа" in html
    html = client.get(f"/mail/mailboxes/{mb['id']}").get_data(as_text=True)
    assert "Проверить подключение" in html
    token = auth.csrf_token(f"/mail/mailboxes/{mb['id']}")
    r = client.post(f"/mail/mailboxes/{mb['id']}/test", data={"csrf_token": token},
                    follow_redirects=True)
    assert "SMTP: соединение установлено, вход выполнен." in r.get_data(as_text=True)
    client.post(f"/mail/mailboxes/{mb['id']}", data={
        "csrf_token": token, "email": "manager1@demo.local", "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.port), "smtp_security": "ssl", "login": "manager1",
        "active": "1"})
    r = client.post(f"/mail/mailboxes/{mb['id']}/test", data={"csrf_token": token},
                    follow_redirects=True)
    assert "SMTP: Ошибка TLS (шифрования)" in r.get_data(as_text=True)
    templates = _api.get("/api/v1/email-templates").get_json()["items"]
    assert {t["name"] for t in templates} == {"blank", "follow_up", "invoice"}
    page = client.get(f"/mail/compose/deal/{deal.id}?template=follow_up&lang=ru")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"{deal.title}: следующий шаг" in html and "Написать письмо" in html
    token = auth.csrf_token(f"/mail/compose/deal/{deal.id}")
    r = client.post(f"/mail/compose/deal/{deal.id}", data={
        "csrf_token": token, "mailbox_id": str(mb["id"]), "to_extra": "не-адрес",
        "subject": "", "body": "x"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "не адрес e-mail: не-адрес" in html and "not an e-mail" not in html
    assert "обязательно" in html.lower() or "обязательное" in html.lower()
    r = client.post(f"/mail/compose/deal/{deal.id}", data={
        "csrf_token": token, "mailbox_id": str(mb["id"]), "to_extra": "a@b.example",
        "subject": "Тема", "body": "Текст"})
    assert r.status_code == 302
    card = client.get(f"/deals/{deal.id}").get_data(as_text=True)
    assert "Тема" in card and "В очереди" in card


def test_send_button_on_the_invoice_card(app, db, demo, mail, smtp, auth, client):
    inv = db.scalars(select(Invoice)).one()
    db.rollback()
    auth.login("head@demo.local")
    card = client.get(f"/invoices/{inv.id}").get_data(as_text=True)
    assert "Отправить по e-mail" in card
    token = auth.csrf_token(f"/invoices/{inv.id}")
    r = client.post(f"/mail/invoices/{inv.id}/send", data={"csrf_token": token})
    assert r.status_code == 302  # no mailbox yet: refused with a message, nothing queued
    assert "сначала настройте почтовый ящик" in client.get(f"/invoices/{inv.id}").get_data(
        as_text=True)
    add_mailbox(app, db, smtp_port=smtp.port, as_user="head@demo.local",
                email="head@demo.local")
    db.rollback()
    r = client.post(f"/mail/invoices/{inv.id}/send", data={"csrf_token": token})
    assert r.status_code == 302
    assert "поставлен в очередь" in client.get(f"/invoices/{inv.id}").get_data(as_text=True)
    assert mail.send_due() == 1
    db.rollback()
    db.expire_all()
    assert db.get(Invoice, inv.id).stage == "sent"
    card = client.get(f"/invoices/{inv.id}").get_data(as_text=True)
    assert f"invoice-{inv.year}-{inv.seq}.pdf" in card and "Отправлено" in card


def test_imap_may_have_its_own_login_and_password(app, db, demo, mail, smtp, imap):
    """SMTP logs in as manager1, IMAP as another account (Dovecot's ``sales``)."""
    from integrations.mail_models import EmailMessage as Stored
    from integrations.mail_models import Mailbox

    from .test_import import _mime

    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port,
                          imap_login="sales", imap_password="wrong")
    assert mb["imap_login"] == "sales" and mb["imap_password_set"] is True
    assert "imap_password" not in mb and "wrong" not in str(api.get("/api/v1/mailboxes")
                                                            .get_json())
    result = api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()
    assert result["smtp"]["ok"] is True  # SMTP keeps its own login
    assert result["imap"]["kind"] == "login" and "IMAP" in result["imap"]["message"]
    db.rollback()
    stored = db.get(Mailbox, mb["id"])
    assert "wrong" not in stored.imap_password_enc and stored.imap_password_enc
    # Only the IMAP password changes; an empty one keeps what is stored.
    api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"imap_password": "sales-secret"})
    api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"imap_password": ""})
    assert api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["ok"] is True
    imap.append("sales", _mime("petrov@vector.example", "В ящик sales", "текст"))
    imap.append("manager1", _mime("petrov@vector.example", "В ящик manager1", "текст"))
    assert mail.poll(mb["id"]) == 1
    db.rollback()
    assert [m.subject for m in db.scalars(select(Stored))] == ["В ящик sales"]
    # Without its own login IMAP logs in as manager1 (SMTP's), still with its own password.
    api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"imap_login": ""})
    assert api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["imap"]["ok"] is False
