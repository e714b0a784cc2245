"""E-mail over REST: ``/api/v1/emails`` (a record's messages, send one, retry, attachments),
``/api/v1/mailboxes`` (settings, "test connection") and ``/api/v1/invoices/<id>/send``."""
from __future__ import annotations

from typing import Any

from flask import current_app

from crm_models.errors import ValidationFailed
from integrations import mail_service as svc
from integrations.mail_transport import MailError, test_server

from .common import api_route, commit, db_actor, json_body, only_keys, query_args, single

OBJ = {"type": "object"}
SEND_KEYS = ("mailbox_id", "entity_type", "entity_id", "to", "cc", "subject", "body",
             "template", "lang", "attach_invoice_id", "reply_to_id")


def _full(db: Any, msg: Any) -> dict[str, Any]:
    return {**msg.summary(), "attachments": [
        {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
         "stored": a.stored} for a in svc.attachments_of(db, msg.id)]}


def _wake() -> None:
    current_app.extensions["mail_scheduler"].wake()


@api_route("/emails", tag="mail", endpoint="email_list", query=("entity_type", "entity_id"),
           summary="A record's e-mails (or those of the caller's mailboxes)", response=OBJ)
def email_list() -> Any:
    args = query_args()
    only_keys(args, ("entity_type", "entity_id"), "an e-mail list query")
    db, actor = db_actor()
    entity_id = single(args, "entity_id")
    if entity_id not in (None, ""):
        entity_id = int(entity_id) if str(entity_id).isdigit() else entity_id
    items = svc.list_emails(db, actor, entity_type=single(args, "entity_type"),
                            entity_id=entity_id)
    return {"items": [_full(db, m) for m in items]}


@api_route("/emails", methods=("POST",), tag="mail", endpoint="email_send", status=201,
           body=OBJ, response=OBJ, summary="Queue an e-mail about a record "
           "(template placeholders filled in when no subject/body is given)")
def email_send() -> Any:
    body = json_body()
    only_keys(body, SEND_KEYS, "an e-mail")
    db, actor = db_actor()
    template = body.pop("template", None)
    lang = body.pop("lang", None) or actor.locale
    if template is not None:
        record = svc.load_record(db, actor, body.get("entity_type"), body.get("entity_id"))
        ctx = svc.template_context(db, actor, record)
        subj, text = svc.template_text(template, lang, db)
        body.setdefault("subject", svc.render(subj, ctx))
        body.setdefault("body", svc.render(text, ctx))
    for key in ("mailbox_id", "entity_type", "entity_id", "to", "subject", "body"):
        body.setdefault(key, None)
    if body["body"] is None:
        body["body"] = ""
    msg = svc.queue_email(db, actor, max_attachment_bytes=int(
        current_app.config["MAIL_ATTACHMENT_MAX_BYTES"]), pdf_lang=lang, **body)
    out = _full(db, msg)
    commit()
    _wake()
    return out, 201


@api_route("/email-templates", tag="mail", endpoint="email_templates", response=OBJ,
           summary="The e-mail templates (built-in and written by admins, Russian and "
           "English) and their placeholders")
def email_templates() -> Any:
    db, _actor = db_actor()
    custom = db.scalars(svc.select(svc.EmailTemplate).order_by(svc.EmailTemplate.title)).all()
    return {"items": [{"name": name, "builtin": True,
                       **{lang: {"subject": subj, "body": body}
                          for lang, (subj, body) in texts.items()}}
                      for name, texts in svc.TEMPLATES.items()]
            + [{"name": t.code, "builtin": False, "id": t.id, "title": t.title,
                "ru": {"subject": t.subject_ru, "body": t.body_ru},
                "en": {"subject": t.subject_en, "body": t.body_en}} for t in custom],
            "placeholders": "{{ entity.field }}: lead, deal, contact, company, invoice, user"}


@api_route("/email-templates", methods=("POST",), tag="mail", endpoint="email_template_create",
           status=201, body=OBJ, response=OBJ,
           summary="Write an e-mail template (admins): code, title, subject_ru, body_ru, "
           "subject_en, body_en; every placeholder is checked")
def email_template_create() -> Any:
    body = json_body()
    only_keys(body, svc.TEMPLATE_FIELDS, "an e-mail template")
    db, actor = db_actor()
    t = svc.save_template(db, actor, **body)
    out = t.summary()
    commit()
    return out, 201


@api_route("/email-templates/<id:template_id>", methods=("PATCH",), tag="mail",
           endpoint="email_template_update", body=OBJ, response=OBJ,
           summary="Change an e-mail template (admins)")
def email_template_update(template_id: int) -> Any:
    body = json_body()
    only_keys(body, svc.TEMPLATE_FIELDS, "an e-mail template")
    db, actor = db_actor()
    t = svc.save_template(db, actor, template_id=template_id, **body)
    out = t.summary()
    commit()
    return out


@api_route("/email-templates/<id:template_id>", methods=("DELETE",), tag="mail",
           endpoint="email_template_delete", status=204,
           summary="Delete an e-mail template (admins)")
def email_template_delete(template_id: int) -> Any:
    db, actor = db_actor()
    svc.delete_template(db, actor, template_id)
    commit()
    return "", 204


@api_route("/emails/<id:email_id>", tag="mail", endpoint="email_get", response=OBJ,
           summary="One e-mail with its attachments' metadata")
def email_get(email_id: int) -> Any:
    db, actor = db_actor()
    return _full(db, svc.get_email(db, actor, email_id))


@api_route("/emails/<id:email_id>/retry", methods=("POST",), tag="mail",
           endpoint="email_retry", response=OBJ, body_required=False,
           summary="Queue an unsent e-mail again")
def email_retry(email_id: int) -> Any:
    db, actor = db_actor()
    msg = svc.retry_email(db, actor, email_id)
    out = _full(db, msg)
    commit()
    _wake()
    return out


@api_route("/emails/attachments/<id:attachment_id>", tag="mail", endpoint="email_attachment",
           summary="An attachment's content (the record's read right)",
           response={"type": "string", "format": "binary"})
def email_attachment(attachment_id: int) -> Any:
    from web.mail import attachment_response

    db, actor = db_actor()
    att = svc.get_attachment(db, actor, attachment_id)
    if not att.stored:
        raise ValidationFailed({"attachment": "too large: left on the mail server"})
    return attachment_response(att)


@api_route("/mailboxes", tag="mail", endpoint="mailbox_list", response=OBJ,
           summary="The caller's mailboxes and the shared one")
def mailbox_list() -> Any:
    db, actor = db_actor()
    return {"items": [svc.mailbox_dict(m) for m in svc.mailboxes_for(db, actor)]}


@api_route("/mailboxes", methods=("POST",), tag="mail", endpoint="mailbox_create",
           status=201, body=OBJ, response=OBJ,
           summary="Add the caller's mailbox (or, with shared: true, the company's)")
def mailbox_create() -> Any:
    body = json_body()
    only_keys(body, (*svc.MAILBOX_FIELDS, "shared"), "a mailbox")
    shared = body.pop("shared", False) is True
    db, actor = db_actor()
    ext = current_app.extensions
    mb = svc.save_mailbox(db, actor, ext["mail_box"], ext["mail_guard"], shared=shared, **body)
    out = svc.mailbox_dict(mb)
    commit()
    return out, 201


@api_route("/mailboxes/<id:mailbox_id>", methods=("PATCH",), tag="mail",
           endpoint="mailbox_update", body=OBJ, response=OBJ, summary="Change a mailbox")
def mailbox_update(mailbox_id: int) -> Any:
    body = json_body()
    only_keys(body, svc.MAILBOX_FIELDS, "a mailbox")
    db, actor = db_actor()
    ext = current_app.extensions
    mb = svc.save_mailbox(db, actor, ext["mail_box"], ext["mail_guard"],
                          mailbox_id=mailbox_id, **body)
    out = svc.mailbox_dict(mb)
    commit()
    return out


@api_route("/mailboxes/<id:mailbox_id>", methods=("DELETE",), tag="mail",
           endpoint="mailbox_delete", status=204, summary="Delete a mailbox")
def mailbox_delete(mailbox_id: int) -> Any:
    db, actor = db_actor()
    svc.delete_mailbox(db, actor, mailbox_id)
    commit()
    return "", 204


@api_route("/mailboxes/<id:mailbox_id>/test", methods=("POST",), tag="mail",
           endpoint="mailbox_test", body_required=False, response=OBJ,
           summary="Connect and log in to the SMTP and IMAP servers; says what failed")
def mailbox_test(mailbox_id: int) -> Any:
    db, actor = db_actor()
    mb = svc.get_mailbox(db, actor, mailbox_id, manage=True)
    ext = current_app.extensions
    results: dict[str, Any] = {}
    try:
        checks = {"smtp": svc.smtp_server(ext["mail_box"], mb)}
        if mb.imap_host:
            checks["imap"] = svc.imap_server(ext["mail_box"], mb)
    except ValueError as exc:
        return {"ok": False, "smtp": {"ok": False, "kind": "login", "message": str(exc)}}
    for kind, server in checks.items():
        try:
            results[kind] = {"ok": True, "message": test_server(ext["mail_guard"], kind,
                                                                server, mb.imap_folder)}
        except MailError as exc:
            results[kind] = {"ok": False, "kind": exc.kind, "message": exc.message}
    return {"ok": all(r["ok"] for r in results.values()), **results}


@api_route("/invoices/<id:invoice_id>/send", methods=("POST",), tag="invoices",
           endpoint="invoice_send", status=201, body_required=False, response=OBJ,
           summary="E-mail the invoice PDF to the buyer's contact; \"sent\" once it went out")
def invoice_send(invoice_id: int) -> Any:
    body = json_body(required=False)
    only_keys(body, ("mailbox_id", "lang"), "an invoice sending")
    db, actor = db_actor()
    msg = svc.send_invoice(db, actor, invoice_id, mailbox_id=body.get("mailbox_id"),
                           lang=body.get("lang") or actor.locale)
    out = _full(db, msg)
    commit()
    _wake()
    return out, 201
