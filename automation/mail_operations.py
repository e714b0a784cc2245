"""The BPMN service operation ``mail.send``: an e-mail about the instance's record, from a
template, to the record's contact, its responsible or a fixed address, optionally with the
invoice PDF. It queues the message in the process's transaction (``integrations.mail_service``);
the mail worker sends it and retries failures, so the process never waits on SMTP.

The message start event ``email.received`` needs nothing here: the mail worker writes that
outbox event with the sender, subject and matched record (``event.email`` in the start data).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_models.org import User
from crm_models.permissions import Actor
from engine.errors import ServiceCallError
from engine.ports import OperationSpec, ParamSpec
from integrations import mail_service as svc
from integrations.mail_models import Mailbox

from .operations import CrmOperation, Target, _user_param
from .params import bad_params

SEND_EMAIL = OperationSpec(
    "mail.send", "Send an e-mail",
    (ParamSpec("template", "string", False, "follow_up, invoice or blank (default blank)",
               tuple(svc.TEMPLATES)),
     ParamSpec("lang", "string", False, "ru or en (default ru)", ("ru", "en")),
     ParamSpec("subject", "string", False, "used instead of the template's; placeholders "
               "such as {{ deal.title }} allowed"),
     ParamSpec("body", "string", False, "used instead of the template's"),
     ParamSpec("to", "string", False, "contact (default), responsible, or an e-mail address"),
     ParamSpec("mailbox", "string", False, "the sending mailbox's address (default: the "
               "responsible's own, else the shared one)"),
     ParamSpec("attach_invoice", "boolean", False, "attach the deal's latest invoice PDF "
               "(it becomes \"sent\" once mailed)"),
     ParamSpec("user", "user", False, "send as this user (default: the system)")),
    "Queue an e-mail about the record; the mail worker sends it and retries failures.")


def _send(session: Session, actor: Actor, t: Target, p: dict[str, Any]) -> dict[str, Any]:
    if t.entity not in svc.MAIL_ENTITIES:
        raise ServiceCallError(f"mail.send does not work on {t.entity}", retryable=False)
    record = svc.load_record(session, actor, t.entity, t.id)
    to_spec = (p.get("to") or "contact").strip()
    if to_spec == "contact":
        to = svc.record_addresses(session, record)[:1]
        if not to:
            raise bad_params(SEND_EMAIL, {"to": f"the {t.entity} has no e-mail address"})
    elif to_spec == "responsible":
        user = session.get(User, record.responsible_id)
        to = [user.email] if user is not None else []
    elif svc.EMAIL_RE.match(to_spec):
        to = [to_spec]
    else:
        raise bad_params(SEND_EMAIL, {"to": "contact, responsible or an e-mail address"})
    box = _mailbox(session, p.get("mailbox"), record.responsible_id)
    subject_t, body_t = svc.template_text(p.get("template") or "blank", p.get("lang") or "ru",
                                        session)
    subject_t, body_t = p.get("subject") or subject_t, p.get("body") or body_t
    if "user" in p:
        sender = _user_param(session, SEND_EMAIL, "user", p["user"])
        ctx_actor = Actor(user_id=sender.id, label=sender.full_name, levels=actor.levels,
                          flags=actor.flags)
    else:
        ctx_actor = actor
    invoice_id = None
    if p.get("attach_invoice"):
        from crm_models.services import invoices as invoice_services

        if t.entity == "invoice":
            invoice_id = t.id
        elif t.entity == "deal":
            latest = invoice_services.list_invoices(session, actor, deal_id=t.id,
                                                    per_page=1).items
            if not latest:
                raise bad_params(SEND_EMAIL, {"attach_invoice": "the deal has no invoice"})
            invoice_id = latest[0].id
        else:
            raise bad_params(SEND_EMAIL, {"attach_invoice": "deals and invoices only"})
    ctx = svc.template_context(session, ctx_actor, record)
    if invoice_id is not None:
        from crm_models.invoices import Invoice
        from crm_models.services.invoices import invoice_dict

        invoice = session.get(Invoice, invoice_id)
        if invoice is not None:
            ctx["invoice"] = invoice_dict(invoice)
    msg = svc.queue_email(session, actor, mailbox_id=box.id, entity_type=t.entity,
                          entity_id=t.id, to=to, subject=svc.render(subject_t, ctx) or "—",
                          body=svc.render(body_t, ctx), attach_invoice_id=invoice_id,
                          vouched=True, pdf_lang=p.get("lang") or "ru")
    return {"email": {"id": msg.id, "message_id": msg.message_id, "to": to}}


def _mailbox(session: Session, address: Any, responsible_id: int) -> Mailbox:
    if address:
        box = session.scalars(select(Mailbox).where(Mailbox.email == address,
                                                    Mailbox.active.is_(True))).first()
        if box is None:
            raise bad_params(SEND_EMAIL, {"mailbox": f"no active mailbox {address!r}"})
        return box
    for cond in (Mailbox.user_id == responsible_id, Mailbox.user_id.is_(None)):
        box = session.scalars(select(Mailbox).where(cond, Mailbox.active.is_(True))
                              .order_by(Mailbox.id)).first()
        if box is not None:
            return box
    raise ServiceCallError("mail.send: no mailbox (the responsible's own or a shared one)",
                           retryable=False, fields={"mailbox": "no mailbox set up"})


def mail_operations() -> list[CrmOperation]:
    return [CrmOperation(SEND_EMAIL, _send)]
