"""Importing from a real IMAP server (a private Dovecot on 127.0.0.1): a reply lands on the
right timeline once, however many pollers run; an unknown sender from the key client's domain
becomes a lead that the routing rules give to the head of Sales."""
from __future__ import annotations

import threading
from email.message import EmailMessage as Mime
from email.utils import make_msgid

from sqlalchemy import select, update

from crm_models.activity import Activity, OutboxEvent
from crm_models.entities import Deal, Lead
from integrations.mail_models import EmailMessage, Mailbox

from .conftest import SALES
from .support import add_mailbox


def _mime(sender: str, subject: str, body: str, **headers: str) -> bytes:
    m = Mime()
    m["From"] = sender
    m["To"] = "manager1@demo.local"
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="vector.example")
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    m.add_attachment("Спецификация".encode(), maintype="text", subtype="plain",
                     filename="спецификация.txt")
    return m.as_bytes()


def test_a_reply_lands_on_the_deal_once_with_two_pollers(app, db, demo, mail, smtp, imap):
    deal = db.scalars(select(Deal).where(Deal.title == "Поставка станков")).one()
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port,
                          as_user="head@demo.local", email="head@demo.local")
    r = api.post("/api/v1/emails", json={
        "mailbox_id": mb["id"], "entity_type": "deal", "entity_id": deal.id,
        "to": ["petrov@vector.example"], "subject": "Сроки поставки", "body": "Когда?"})
    ours = r.get_json()
    assert mail.send_due() == 1
    # Petrov answers from another address than the one on file: threading files it.
    imap.append("manager1", _mime("Пётр Петров <p.petrov@other.example>", "Re: Сроки поставки",
                                  "В марте.", In_Reply_To=ours["message_id"],
                                  References=ours["message_id"]))
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.append(mail.poll(mb["id"])))
               for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert sorted(counts) == [0, 1]  # one imported it, the other found it leased or done
    # A poller that lost its place (a reset cursor: a new UIDVALIDITY, a restored backup)
    # finds the message imported already.
    db.rollback()
    db.execute(update(Mailbox).values(imap_last_uid=0, imap_uidvalidity=None))
    db.commit()
    assert mail.poll(mb["id"]) == 0
    db.rollback()
    [reply] = db.scalars(select(EmailMessage).where(EmailMessage.direction == "in")).all()
    assert (reply.entity_type, reply.entity_id) == ("deal", deal.id)
    assert reply.in_reply_to == ours["message_id"] and reply.from_name == "Пётр Петров"
    assert reply.body.strip() == "В марте."
    act = db.get(Activity, reply.activity_id)
    assert (act.type, act.entity_type, act.entity_id) == ("email", "deal", deal.id)
    [ev] = db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "email.received"))
    assert ev.payload["email"]["subject"] == "Re: Сроки поставки"
    # The attachment is kept and downloadable with the deal's read right, not without it.
    [att] = api.get(f"/api/v1/emails/{reply.id}").get_json()["attachments"]
    assert att["filename"] == "спецификация.txt"
    got = api.get(f"/api/v1/emails/attachments/{att['id']}")
    assert got.status_code == 200 and got.data == "Спецификация".encode()
    from tests.automation.support import api_as

    db.rollback()
    outsider = api_as(app, db, "manager2@demo.local")
    assert outsider.get(f"/api/v1/emails/attachments/{att['id']}").status_code == 404
    assert outsider.get(f"/api/v1/emails/{reply.id}").status_code == 404


def test_a_known_contact_is_matched_by_address(app, db, demo, mail, smtp, imap):
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port)
    imap.append("manager1", _mime("petrov@vector.example", "Вопрос", "Есть вопрос."))
    mail.attachment_limit = 10  # bytes: the attachment (24 bytes) is over the limit
    try:
        assert mail.poll(mb["id"]) == 1
    finally:
        mail.attachment_limit = app.config["MAIL_ATTACHMENT_MAX_BYTES"]
    db.rollback()
    [msg] = db.scalars(select(EmailMessage)).all()
    assert msg.entity_type == "contact"
    # Over the limit: listed with its name and size, the content left on the server.
    from tests.automation.support import api_as

    db.rollback()
    api = api_as(app, db, "admin@demo.local")
    [att] = api.get(f"/api/v1/emails/{msg.id}").get_json()["attachments"]
    assert (att["filename"], att["size"], att["stored"]) == ("спецификация.txt", 24, False)
    r = api.get(f"/api/v1/emails/attachments/{att['id']}")
    assert r.status_code == 422 and "too large" in r.get_json()["error"]["fields"]["attachment"]


def test_unknown_sender_from_the_key_client_becomes_a_lead_for_the_head(
        app, db, demo, mail, smtp, imap):
    admin, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port, email=SALES,
                            login="sales", password="sales-secret", as_user="admin@demo.local",
                            shared=True, create_leads=True,
                            lead_user_ids=[demo.m1.id, demo.m2.id])
    assert mb["shared"] is True
    imap.append("sales", _mime("Новый Сотрудник <new.person@vector.example>",
                               "Запрос цены на станки", "Пришлите прайс."))
    imap.append("sales", _mime("Кто-то <someone@granit.example>", "Другой запрос", "Цены?"))
    assert mail.poll(mb["id"]) == 2
    db.rollback()
    db.expire_all()
    leads = {lead.title: lead for lead in db.scalars(select(Lead).where(Lead.source == "EMAIL"))}
    key, other = leads["Запрос цены на станки"], leads["Другой запрос"]
    assert key.company_title == "ООО «Вектор»" and key.first_name == "Новый"
    assert key.emails[0]["value"] == "new.person@vector.example"
    # lead.created went through the routing rules: the key client's lead is the head's.
    assert key.responsible_id == demo.head.id
    assert other.responsible_id == demo.m2.id  # round robin: m1, then m2
    msgs = db.scalars(select(EmailMessage).order_by(EmailMessage.id)).all()
    assert [(m.entity_type, m.entity_id) for m in msgs] == [("lead", key.id),
                                                           ("lead", other.id)]


def test_imap_wrong_password_is_named_and_recorded(app, db, demo, mail, smtp, imap):
    api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port, password="bad")
    result = api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()
    assert result["ok"] is False
    assert result["imap"]["kind"] == "login" and result["smtp"]["kind"] == "login"
    imap.append("manager1", _mime("petrov@vector.example", "Вопрос", "?"))
    mail.run_once()
    db.rollback()
    assert db.get(Mailbox, mb["id"]).last_error.startswith("login: IMAP 127.0.0.1")
    assert db.scalars(select(EmailMessage)).all() == []
    api.call("PATCH", f"/api/v1/mailboxes/{mb['id']}", json={"password": "smtp-secret"})
    assert api.post(f"/api/v1/mailboxes/{mb['id']}/test").get_json()["ok"] is True
    assert mail.poll(mb["id"]) == 1  # nothing was lost: the message is imported now


def test_email_received_starts_a_process_with_the_sender_and_subject(
        app, db, demo, mail, smtp, imap, engine):
    from crm_models.activity import Comment
    from tests.automation.support import instances_of, service_process

    engine.deploy(db, service_process(
        "mail_triage", message="email.received", condition='event.email.subject == "Вопрос"',
        params={"text": "Письмо от клиента"}))
    db.commit()
    _api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port)
    imap.append("manager1", _mime("Пётр Петров <petrov@vector.example>", "Вопрос", "?"))
    imap.append("manager1", _mime("petrov@vector.example", "Другое", "?"))
    assert mail.poll(mb["id"]) == 2
    first, second = instances_of(db, "mail_triage")
    assert (first.entity_type, first.status) == ("contact", "completed")
    email_data = engine.instance_data(db, first.id)["event"]["email"]
    assert email_data["from"] == "petrov@vector.example" and email_data["subject"] == "Вопрос"
    assert (email_data["entity_type"], email_data["entity_id"]) == ("contact", first.entity_id)
    [comment] = db.scalars(select(Comment).where(Comment.entity_type == "contact")).all()
    assert comment.text == "Письмо от клиента" and comment.entity_id == first.entity_id


def test_racing_pollers_without_leases_import_each_message_once(app, db, demo, mail, smtp,
                                                                imap):
    """The unique key is the backstop when the lease does not keep pollers apart (a lease
    that ran out while a slow poller was still importing)."""
    import dataclasses
    import datetime as dt

    _api, mb = add_mailbox(app, db, smtp_port=smtp.port, imap_port=imap.port)
    for i in range(6):
        imap.append("manager1", _mime("petrov@vector.example", f"Письмо {i}", "текст"))
    leaseless = [dataclasses.replace(mail, lease=dt.timedelta(0)) for _ in range(3)]
    counts: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(leaseless))

    def run(worker):
        try:
            barrier.wait(10)
            counts.append(worker.poll(mb["id"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in leaseless]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(counts) == 6, counts
    db.rollback()
    subjects = sorted(db.scalars(select(EmailMessage.subject)))
    assert subjects == [f"Письмо {i}" for i in range(6)]
    acts = db.scalars(select(Activity).where(Activity.type == "email")).all()
    assert len(acts) == 6
    assert len(db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "email.received")).all()) == 6
