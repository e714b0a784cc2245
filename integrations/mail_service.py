"""Mail service functions: mailbox settings, composing and queueing a message from a record,
templates with placeholders, reading messages and attachments with the record's rights.

Sending itself happens in ``integrations.mail_worker`` (the outbox of e-mails): a queued
message is a row here, written in the caller's transaction with its e-mail activity on the
record's timeline, an audit event and an ``email.queued`` outbox event — it cannot be lost
between the click and the SMTP server, and a failed send stays queued for the next attempt.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import make_msgid, parseaddr
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm_models.db import utcnow
from crm_models.entities import Company, Contact, Deal, Lead
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.invoices import Invoice
from crm_models.org import User
from crm_models.permissions import Actor
from crm_models.serialize import to_dict
from crm_models.services import activities, records
from crm_models.services import invoices as invoice_services

from .mail_crypto import PasswordBox
from .mail_models import SECURITY_MODES, EmailAttachment, EmailMessage, EmailTemplate, Mailbox
from .mail_transport import MailError, MailGuard, Server

MAIL_ENTITIES = ("lead", "deal", "contact", "company", "invoice")
MAX_RECIPIENTS = 50
MAX_BODY = 200_000
EMAIL_RE = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:]+$")

#: name → language → (subject, body). Placeholders: ``{{ entity.field }}``.
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "blank": {"ru": ("", ""), "en": ("", "")},
    "follow_up": {
        "ru": ("{{ deal.title }}: следующий шаг",
               "Здравствуйте, {{ contact.name }}!\n\nСпасибо за интерес к нашему предложению "
               "«{{ deal.title }}». Когда вам удобно обсудить детали?\n\n"
               "С уважением,\n{{ user.name }}"),
        "en": ("{{ deal.title }}: next step",
               "Hello {{ contact.name }},\n\nThank you for your interest in "
               "\"{{ deal.title }}\". When would suit you to discuss the details?\n\n"
               "Best regards,\n{{ user.name }}"),
    },
    "invoice": {
        "ru": ("Счёт № {{ invoice.number }} от {{ invoice.issued_on }}",
               "Здравствуйте, {{ contact.name }}!\n\nНаправляем счёт № {{ invoice.number }} "
               "на сумму {{ invoice.total }} {{ invoice.currency }}. PDF во вложении.\n\n"
               "С уважением,\n{{ user.name }}"),
        "en": ("Invoice No. {{ invoice.number }} of {{ invoice.issued_on }}",
               "Hello {{ contact.name }},\n\nPlease find attached invoice No. "
               "{{ invoice.number }} for {{ invoice.total }} {{ invoice.currency }}.\n\n"
               "Best regards,\n{{ user.name }}"),
    },
}
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


# --- mailboxes ---------------------------------------------------------------------------------

MAILBOX_FIELDS = ("name", "email", "display_name", "smtp_host", "smtp_port", "smtp_security",
                  "imap_host", "imap_port", "imap_security", "imap_folder", "login", "password",
                  "imap_login", "imap_password", "active", "create_leads", "lead_user_ids")
SECRET_FIELDS = ("password", "imap_password")


def mailbox_dict(mb: Mailbox) -> dict[str, Any]:
    out = {k: getattr(mb, k) for k in MAILBOX_FIELDS if k not in SECRET_FIELDS}
    out.update(id=mb.id, user_id=mb.user_id, shared=mb.shared,
               password_set=bool(mb.password_enc),
               imap_password_set=bool(mb.imap_password_enc), last_error=mb.last_error,
               last_poll_at=mb.last_poll_at.isoformat() if mb.last_poll_at else None)
    return out


def smtp_server(box: PasswordBox, mb: Mailbox) -> Server:
    """SMTP connection settings (``PasswordUnreadable`` when the key changed)."""
    return Server(mb.smtp_host, mb.smtp_port, mb.smtp_security, mb.login,
                  box.decrypt(mb.password_enc))


def imap_server(box: PasswordBox, mb: Mailbox) -> Server:
    """IMAP connection settings: its own login and password, else SMTP's."""
    password = box.decrypt(mb.imap_password_enc or mb.password_enc)
    return Server(mb.imap_host, mb.imap_port, mb.imap_security, mb.imap_login or mb.login,
                  password)


def mailboxes_for(session: Session, actor: Actor) -> list[Mailbox]:
    """The actor's own mailboxes, then the shared one(s)."""
    cond = Mailbox.user_id.is_(None)
    if actor.user_id is not None:
        cond = or_(cond, Mailbox.user_id == actor.user_id)
    return list(session.scalars(select(Mailbox).where(cond)
                                .order_by(Mailbox.user_id.is_(None), Mailbox.id)))


def get_mailbox(session: Session, actor: Actor, mailbox_id: Any, *,
                manage: bool = False) -> Mailbox:
    mb = session.get(Mailbox, mailbox_id) if _is_id(mailbox_id) else None
    if mb is None or (mb.user_id is not None and mb.user_id != actor.user_id
                      and not actor.is_admin):
        raise NotFound(f"No mailbox with id {str(mailbox_id)[:20]}")
    if manage and mb.user_id is None:
        actor.require_flag("manage_settings")
    return mb


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= records.MAX_ID


def _text(errors: dict[str, str], name: str, value: Any, limit: int,
          required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    value = value.strip()
    if "\x00" in value or len(value) > limit:
        errors[name] = f"must be text of at most {limit} characters"
    elif required and not value:
        errors[name] = "is required"
    return value


def _port(errors: dict[str, str], name: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        errors[name] = "must be a port number 1–65535"
        return 0
    return value


def _flag(errors: dict[str, str], name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no", "", None):
        return False
    errors[name] = "must be true or false"
    return False


def save_mailbox(session: Session, actor: Actor, box: PasswordBox, guard: MailGuard, *,
                 mailbox_id: int | None = None, shared: bool = False,
                 **fields: Any) -> Mailbox:
    """Create or change a mailbox: the actor's own, or (``shared``, admins only) the company's.
    An empty ``password`` keeps the stored one."""
    if mailbox_id is not None:
        mb = get_mailbox(session, actor, mailbox_id, manage=True)
    else:
        if shared:
            actor.require_flag("manage_settings")
        elif actor.user_id is None:
            raise PermissionDenied("Only a user has an own mailbox")
        mb = Mailbox(user_id=None if shared else actor.user_id, email="")
    errors: dict[str, str] = {}
    unknown = [k for k in fields if k not in MAILBOX_FIELDS]
    for k in unknown:
        errors[str(k)[:60]] = "is not a mailbox setting"
    values: dict[str, Any] = {}
    merged = {k: getattr(mb, k, None) for k in MAILBOX_FIELDS if k not in SECRET_FIELDS}
    merged.update({k: v for k, v in fields.items() if k in MAILBOX_FIELDS})
    values["name"] = _text(errors, "name", merged.get("name"), 100)
    values["email"] = _text(errors, "email", merged.get("email"), 255, required=True)
    if values["email"] and not EMAIL_RE.match(values["email"]):
        errors["email"] = "must be an e-mail address"
    values["display_name"] = _text(errors, "display_name", merged.get("display_name"), 255)
    values["login"] = _text(errors, "login", merged.get("login"), 255)
    values["imap_login"] = _text(errors, "imap_login", merged.get("imap_login"), 255)
    values["smtp_host"] = _text(errors, "smtp_host", merged.get("smtp_host"), 255,
                                required=True)
    values["imap_host"] = _text(errors, "imap_host", merged.get("imap_host"), 255)
    values["imap_folder"] = _text(errors, "imap_folder", merged.get("imap_folder") or "INBOX",
                                  255) or "INBOX"
    for name, default in (("smtp_port", 465), ("imap_port", 993)):
        given = merged.get(name)
        values[name] = _port(errors, name, default if given in (None, "") else given)
    for name in ("smtp_security", "imap_security"):
        value = merged.get(name) or "ssl"
        if value not in SECURITY_MODES:
            errors[name] = "must be one of: " + ", ".join(SECURITY_MODES)
        values[name] = value
    for name in ("active", "create_leads"):
        values[name] = _flag(errors, name, merged.get(name) if merged.get(name) is not None
                             else name == "active")
    users = merged.get("lead_user_ids") or []
    if isinstance(users, str):
        users = [u for u in re.split(r"[,\s]+", users) if u]
    clean_users: list[int] = []
    if not isinstance(users, list):
        errors["lead_user_ids"] = "must be a list of user ids"
    else:
        for u in users:
            uid = int(u) if isinstance(u, str) and u.isdigit() else u
            user = session.get(User, uid) if _is_id(uid) else None
            if user is None or not user.active:
                errors["lead_user_ids"] = f"no active user with id {str(u)[:20]}"
                break
            clean_users.append(user.id)
    values["lead_user_ids"] = clean_users
    if values["create_leads"] and not clean_users and mb.user_id is None:
        errors["lead_user_ids"] = "give the users who get the new leads in turn"
    for name, port in (("smtp_host", "smtp_port"), ("imap_host", "imap_port")):
        if values[name] and name not in errors:
            try:
                guard.check_host(values[name], values[port] or 1)
            except MailError as exc:
                errors[name] = exc.message
    password, imap_password = fields.get("password"), fields.get("imap_password")
    for name, secret in (("password", password), ("imap_password", imap_password)):
        if secret is not None and (not isinstance(secret, str) or len(secret) > 1000):
            errors[name] = "must be text of at most 1000 characters"
    if errors:
        raise ValidationFailed(errors)
    changes = {k: [getattr(mb, k, None), v] for k, v in values.items()
               if getattr(mb, k, None) != v}
    for k, v in values.items():
        setattr(mb, k, v)
    if password:
        mb.password_enc = box.encrypt(password)
        changes["password"] = ["***", "***"]
    if imap_password:
        mb.imap_password_enc = box.encrypt(imap_password)
        changes["imap_password"] = ["***", "***"]
    mb.updated_at = utcnow()
    if mb.imap_host != (changes.get("imap_host") or [mb.imap_host])[0]:
        mb.imap_uidvalidity, mb.imap_last_uid = None, 0
    session.add(mb)
    session.flush()
    records.record_event(session, actor, entity="mailbox", entity_id=mb.id,
                         action="created" if mailbox_id is None else "updated",
                         event_type=None, changes=changes)
    return mb


def delete_mailbox(session: Session, actor: Actor, mailbox_id: Any) -> None:
    mb = get_mailbox(session, actor, mailbox_id, manage=True)
    records.record_event(session, actor, entity="mailbox", entity_id=mb.id, action="deleted",
                         event_type=None, changes={"email": [mb.email, None]})
    session.delete(mb)
    session.flush()


# --- records, addresses, templates ---------------------------------------------------------------

def load_record(session: Session, actor: Actor, entity: Any, entity_id: Any,
                action: str = "read") -> Any:
    if entity not in MAIL_ENTITIES:
        raise ValidationFailed({"entity_type": "must be one of: " + ", ".join(MAIL_ENTITIES)})
    if entity == "invoice":
        return invoice_services.get_invoice(
            session, actor, entity_id if _is_id(entity_id) else 0, action)
    return records.load(session, actor, entity, entity_id, action)


def _emails_of(record: Any) -> list[str]:
    return [e.get("value", "") for e in (getattr(record, "emails", None) or [])
            if isinstance(e, dict) and e.get("value")]


def record_addresses(session: Session, record: Any) -> list[str]:
    """The record's e-mail addresses, then those of its contacts and company."""
    out: list[str] = []
    related: list[Any] = [record]
    if isinstance(record, Deal):
        related += [*record.contacts, record.company]
    elif isinstance(record, (Lead, Contact)):
        related.append(record.company)
    elif isinstance(record, Invoice):
        related += [session.get(Contact, record.contact_id) if record.contact_id else None,
                    session.get(Company, record.company_id) if record.company_id else None]
    for r in related:
        if r is not None:
            out += _emails_of(r)
    return list(dict.fromkeys(out))


def _contact_of(session: Session, record: Any) -> Contact | None:
    if isinstance(record, Contact):
        return record
    if isinstance(record, Deal) and record.contacts:
        return record.contacts[0]
    if isinstance(record, Lead):
        return record.contact
    if isinstance(record, Invoice) and record.contact_id:
        return session.get(Contact, record.contact_id)
    return None


def template_context(session: Session, actor: Actor, record: Any) -> dict[str, dict[str, Any]]:
    entity = "invoice" if isinstance(record, Invoice) else record.entity_type
    ctx: dict[str, dict[str, Any]] = {}
    data = (invoice_services.invoice_dict(record) if entity == "invoice" else to_dict(record))
    ctx[entity] = data
    contact = _contact_of(session, record)
    if contact is not None:
        ctx["contact"] = {**to_dict(contact), "name": contact.full_name}
    elif isinstance(record, Lead):
        ctx["contact"] = {"name": " ".join(p for p in (record.first_name, record.last_name)
                                           if p) or record.title}
    if isinstance(record, Invoice) and record.deal_id:
        deal = session.get(Deal, record.deal_id)
        if deal is not None:
            ctx["deal"] = to_dict(deal)
    company_id = getattr(record, "company_id", None)
    if isinstance(record, Company):
        ctx["company"] = to_dict(record)
    elif company_id:
        company = session.get(Company, company_id)
        if company is not None:
            ctx["company"] = to_dict(company)
    user = session.get(User, actor.user_id) if actor.user_id else None
    ctx["user"] = {"name": user.full_name if user else actor.label,
                   "email": user.email if user else ""}
    return ctx


def render(text: str, ctx: dict[str, dict[str, Any]]) -> str:
    """``{{ entity.field }}`` replaced by the value (empty when unknown): plain substitution,
    no expressions, so a template can never run code."""
    def sub(m: re.Match[str]) -> str:
        value = (ctx.get(m.group(1)) or {}).get(m.group(2))
        return "" if value is None else str(value)
    return PLACEHOLDER.sub(sub, text)


def template_text(name: str, lang: str, session: Session | None = None) -> tuple[str, str]:
    """(subject, body) of a built-in template or (with ``session``) one admins wrote."""
    en = lang == "en"
    if name in TEMPLATES:
        return TEMPLATES[name]["en" if en else "ru"]
    if session is not None and isinstance(name, str):
        t = session.scalars(select(EmailTemplate).where(EmailTemplate.code == name)).first()
        if t is not None:
            if en and (t.subject_en or t.body_en):
                return t.subject_en, t.body_en
            return (t.subject_ru, t.body_ru) if (t.subject_ru or t.body_ru or not en) else (
                t.subject_en, t.body_en)
    names = list(TEMPLATES)
    if session is not None:
        names += list(session.scalars(select(EmailTemplate.code).order_by(EmailTemplate.code)))
    raise ValidationFailed({"template": "must be one of: " + ", ".join(names)})


def template_choices(session: Session) -> list[tuple[str, str]]:
    """(code, title) of the templates admins wrote, by title."""
    return [(t.code, t.title) for t in session.scalars(
        select(EmailTemplate).order_by(EmailTemplate.title, EmailTemplate.id))]


def _placeholder_fields() -> dict[str, frozenset[str]]:
    from crm_models.invoices import Invoice as _Invoice

    def cols(model: Any) -> set[str]:
        return {c.key for c in model.__table__.columns}

    return {"lead": frozenset(cols(Lead)), "deal": frozenset(cols(Deal)),
            "contact": frozenset(cols(Contact) | {"name"}),
            "company": frozenset(cols(Company)),
            "invoice": frozenset(cols(_Invoice) | {"total", "currency", "number",
                                                   "issued_on"}),
            "user": frozenset({"name", "email"})}


ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
TEMPLATE_FIELDS = ("code", "title", "subject_ru", "body_ru", "subject_en", "body_en")


def placeholder_problem(text: str) -> str | None:
    """The first placeholder in ``text`` that would not be filled in, described; else None."""
    fields = _placeholder_fields()
    for m in ANY_PLACEHOLDER.finditer(text):
        shown = m.group(0)[:80]
        inner = PLACEHOLDER.fullmatch(m.group(0))
        if inner is None:
            return f"{shown} is not a placeholder; write {{{{ entity.field }}}}, e.g. " \
                   "{{ deal.title }}"
        entity, name = inner.group(1), inner.group(2)
        if entity not in fields:
            return f"{shown}: unknown record \"{entity}\"; use one of: " + ", ".join(fields)
        if name not in fields[entity]:
            return f"{shown}: {entity} has no field \"{name}\""
    if "{{" in ANY_PLACEHOLDER.sub("", text) or "}}" in ANY_PLACEHOLDER.sub("", text):
        return "an unclosed {{ or }}"
    return None


def get_template(session: Session, actor: Actor, template_id: Any) -> EmailTemplate:
    t = session.get(EmailTemplate, template_id) if _is_id(template_id) else None
    if t is None:
        raise NotFound(f"No e-mail template {str(template_id)[:20]}")
    return t


def save_template(session: Session, actor: Actor, *, template_id: Any = None,
                  **fields: Any) -> EmailTemplate:
    """Create or change an e-mail template (admins: ``manage_settings``); every placeholder is
    checked, a wrong one is a field error naming it."""
    actor.require_flag("manage_settings")
    t = get_template(session, actor, template_id) if template_id is not None else \
        EmailTemplate()
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    errors: dict[str, str] = {k: "unknown field" for k in sorted(unknown)}
    values: dict[str, Any] = {}
    for name in TEMPLATE_FIELDS:
        if name not in fields and template_id is not None:
            continue
        limit = 60 if name == "code" else 200 if name == "title" else \
            500 if name.startswith("subject") else MAX_BODY
        value = _text(errors, name, fields.get(name, ""), limit,
                      required=name in ("code", "title"))
        if name in errors:
            continue
        if name == "code":
            value = value.strip().lower()
            if not CODE_RE.match(value):
                errors[name] = "letters a-z, digits, - and _ (at most 60)"
                continue
            if value in TEMPLATES:
                errors[name] = f"{value} is a built-in template"
                continue
            clash = session.scalars(select(EmailTemplate.id).where(
                EmailTemplate.code == value, EmailTemplate.id != (t.id or 0))).first()
            if clash is not None:
                errors[name] = f"a template {value} exists already"
                continue
        elif name != "title" and (problem := placeholder_problem(value)):
            errors[name] = problem
            continue
        values[name] = value
    merged = {n: values.get(n, getattr(t, n, None) or "") for n in TEMPLATE_FIELDS}
    if not errors and not (merged["subject_ru"] or merged["body_ru"] or merged["subject_en"]
                           or merged["body_en"]):
        errors["subject_ru"] = "give a subject or a text in at least one language"
    if errors:
        raise ValidationFailed(errors)
    changes = {k: [getattr(t, k, None), v] for k, v in values.items()
               if getattr(t, k, None) != v}
    for k, v in values.items():
        setattr(t, k, v)
    t.updated_by_id = actor.user_id
    t.updated_at = utcnow()
    session.add(t)
    session.flush()
    records.record_event(session, actor, entity="email_template", entity_id=t.id,
                         action="created" if template_id is None else "updated",
                         event_type="email_template.saved", changes=changes,
                         payload={"template": {"id": t.id, "code": t.code}})
    return t


def delete_template(session: Session, actor: Actor, template_id: Any) -> None:
    actor.require_flag("manage_settings")
    t = get_template(session, actor, template_id)
    records.record_event(session, actor, entity="email_template", entity_id=t.id,
                         action="deleted", event_type="email_template.deleted",
                         changes={"code": [t.code, None]},
                         payload={"template": {"id": t.id, "code": t.code}})
    session.delete(t)
    session.flush()


# --- composing ---------------------------------------------------------------------------------

def _addresses(errors: dict[str, str], name: str, value: Any, required: bool) -> list[str]:
    if value in (None, ""):
        value = []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[name] = "must be a list of e-mail addresses"
        return []
    bad = [v for v in value if not EMAIL_RE.match(v.strip()) or len(v) > 255]
    if bad:
        errors[name] = f"not an e-mail address: {bad[0][:80]}"
    elif required and not value:
        errors[name] = "give at least one address"
    elif len(value) > MAX_RECIPIENTS:
        errors[name] = f"at most {MAX_RECIPIENTS} addresses"
    return list(dict.fromkeys(v.strip() for v in value))


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


def queue_email(session: Session, actor: Actor, *, mailbox_id: Any, entity_type: Any,
                entity_id: Any, to: Any, subject: Any, body: Any, cc: Any = None,
                attachments: Iterable[Upload] = (), attach_invoice_id: Any = None,
                reply_to_id: Any = None, max_attachment_bytes: int = 10 * 1024 * 1024,
                vouched: bool = False, pdf_lang: Any = None) -> EmailMessage:
    """Queue an e-mail about a record (the actor needs update on it): the message row, its
    e-mail activity on the record's timeline, ``email.queued``. ``attach_invoice_id``: the
    invoice's PDF is rendered and attached when it is sent, and the invoice moves to "sent"
    once it went out, in the layout of ``pdf_lang`` (ru/en; default the sender's UI language).
    ``reply_to_id``: a message on this record it answers (threading)."""
    errors: dict[str, str] = {}
    mb = None
    try:
        mb = get_mailbox(session, actor, mailbox_id)
    except NotFound:
        errors["mailbox_id"] = f"no mailbox with id {str(mailbox_id)[:20]}"
    if mb is not None and not mb.active:
        errors["mailbox_id"] = "this mailbox is switched off"
    to_list = _addresses(errors, "to", to, True)
    cc_list = _addresses(errors, "cc", cc, False)
    subj = _text(errors, "subject", subject, 500, required=True)
    text = body if isinstance(body, str) else ""
    if not isinstance(body, str) or len(body) > MAX_BODY or "\x00" in body:
        errors["body"] = f"must be text of at most {MAX_BODY} characters"
    files = list(attachments)
    for f in files:
        if len(f.data) > max_attachment_bytes:
            errors["attachments"] = (f"{f.filename[:80]} is larger than "
                                     f"{max_attachment_bytes // (1024 * 1024)} MB")
    if errors.get("mailbox_id") is None and entity_type not in MAIL_ENTITIES:
        errors["entity_type"] = "must be one of: " + ", ".join(MAIL_ENTITIES)
    if errors:
        raise ValidationFailed(errors)
    assert mb is not None
    record = load_record(session, actor, entity_type, entity_id,
                         "read" if vouched else "update")
    invoice: Invoice | None = None
    if attach_invoice_id not in (None, "", False):
        invoice = invoice_services.get_invoice(
            session, actor, attach_invoice_id if _is_id(attach_invoice_id) else 0)
        if entity_type == "deal" and invoice.deal_id != record.id:
            raise ValidationFailed({"attach_invoice_id": "is not this deal's invoice"})
    in_reply_to, references = "", ""
    if reply_to_id not in (None, ""):
        parent = session.get(EmailMessage, reply_to_id) if _is_id(reply_to_id) else None
        if parent is None or (parent.entity_type, parent.entity_id) != (entity_type, record.id):
            raise ValidationFailed({"reply_to_id": "is not a message of this record"})
        in_reply_to = parent.message_id
        references = " ".join(p for p in (parent.references, parent.message_id) if p)[-4000:]
    domain = mb.email.rpartition("@")[2] or "marshrut.local"
    msg = EmailMessage(
        mailbox_id=mb.id, direction="out", status="queued",
        message_id=make_msgid(domain=domain), in_reply_to=in_reply_to, references=references,
        from_addr=mb.email, from_name=mb.display_name, to_addrs=to_list, cc_addrs=cc_list,
        subject=subj, body=text, entity_type=entity_type, entity_id=record.id,
        responsible_id=record.responsible_id, invoice_id=invoice.id if invoice else None,
        next_attempt_at=utcnow(), created_by_id=actor.user_id,
        pdf_lang=_pdf_lang(session, actor, pdf_lang))
    session.add(msg)
    session.flush()
    for f in files:
        session.add(EmailAttachment(email_id=msg.id, filename=f.filename[:255] or "file",
                                    content_type=f.content_type[:100] or
                                    "application/octet-stream", size=len(f.data),
                                    data=f.data))
    # The e-mail activity on the timeline (an invoice's goes on its deal's).
    on = (entity_type, record.id) if entity_type != "invoice" else ("deal", record.deal_id)
    if on[1] is not None:
        act = activities.add_activity(
            session, actor, entity_type=on[0], entity_id=on[1], type="email",
            subject=subj[:255], description=text[:20000],
            responsible_id=actor.user_id or record.responsible_id)
        msg.activity_id = act.id
    records.record_event(session, actor, entity=entity_type, entity_id=record.id,
                         action="email_queued", event_type="email.queued",
                         changes={"email": [None, subj[:200]]},
                         payload={"email": email_event(msg)},
                         responsible_id=record.responsible_id)
    session.flush()
    return msg


def email_event(msg: EmailMessage) -> dict[str, Any]:
    """What ``email.*`` events carry (and ``email.received`` start data hold)."""
    return {"id": msg.id, "direction": msg.direction, "from": msg.from_addr,
            "from_name": msg.from_name, "to": list(msg.to_addrs or []), "subject": msg.subject,
            "message_id": msg.message_id, "in_reply_to": msg.in_reply_to,
            "entity_type": msg.entity_type, "entity_id": msg.entity_id,
            "status": msg.status}


def _pdf_lang(session: Session, actor: Actor, lang: Any) -> str:
    if lang in ("ru", "en"):
        return str(lang)
    user = session.get(User, actor.user_id) if actor.user_id else None
    return "en" if user is not None and user.locale == "en" else "ru"


def send_invoice(session: Session, actor: Actor, invoice_id: Any, *, mailbox_id: Any = None,
                 lang: str = "ru") -> EmailMessage:
    """"Send" on an invoice: the invoice template, the PDF attached, to the buyer's contact
    (else the company); the invoice moves to "sent" when the mail went out."""
    inv = invoice_services.get_invoice(session, actor, invoice_id if _is_id(invoice_id) else 0,
                                       "update")
    to = record_addresses(session, inv)
    if not to:
        raise ValidationFailed({"to": "the buyer's contact and company have no e-mail address"})
    if mailbox_id in (None, ""):
        boxes = [m for m in mailboxes_for(session, actor) if m.active]
        if not boxes:
            raise ValidationFailed({"mailbox_id": "set up a mailbox first"})
        mailbox_id = boxes[0].id
    subject, body = template_text("invoice", lang)
    ctx = template_context(session, actor, inv)
    return queue_email(session, actor, mailbox_id=mailbox_id, entity_type="invoice",
                       entity_id=inv.id, to=to[:1], subject=render(subject, ctx),
                       body=render(body, ctx), attach_invoice_id=inv.id, pdf_lang=lang)


# --- reading -----------------------------------------------------------------------------------

def _readable(session: Session, actor: Actor, msg: EmailMessage) -> bool:
    if msg.entity_type is not None and msg.entity_id is not None:
        try:
            load_record(session, actor, msg.entity_type, msg.entity_id)
            return True
        except (NotFound, PermissionDenied, ValidationFailed):
            return False
    mb = session.get(Mailbox, msg.mailbox_id) if msg.mailbox_id else None
    if mb is None:
        return actor.is_admin
    return mb.user_id == actor.user_id or (mb.user_id is None and actor.is_admin)


def get_email(session: Session, actor: Actor, email_id: Any) -> EmailMessage:
    msg = session.get(EmailMessage, email_id) if _is_id(email_id) else None
    if msg is None or not _readable(session, actor, msg):
        raise NotFound(f"No e-mail with id {str(email_id)[:20]}")
    return msg


def list_emails(session: Session, actor: Actor, *, entity_type: Any = None,
                entity_id: Any = None, limit: int = 100) -> list[EmailMessage]:
    """A record's messages (newest first), or — without a record — the messages of the
    actor's mailboxes that the actor may read."""
    if entity_type not in (None, ""):
        record = load_record(session, actor, entity_type, entity_id)
        return list(session.scalars(select(EmailMessage).where(
            EmailMessage.entity_type == entity_type, EmailMessage.entity_id == record.id)
            .order_by(EmailMessage.id.desc()).limit(limit)))
    boxes = [m.id for m in mailboxes_for(session, actor)]
    rows = session.scalars(select(EmailMessage).where(EmailMessage.mailbox_id.in_(boxes))
                           .order_by(EmailMessage.id.desc()).limit(limit * 2))
    return [m for m in rows if _readable(session, actor, m)][:limit]


def attachments_of(session: Session, email_id: int) -> list[EmailAttachment]:
    return list(session.scalars(select(EmailAttachment).where(
        EmailAttachment.email_id == email_id).order_by(EmailAttachment.id)))


def get_attachment(session: Session, actor: Actor, attachment_id: Any) -> EmailAttachment:
    att = session.get(EmailAttachment, attachment_id) if _is_id(attachment_id) else None
    if att is None:
        raise NotFound(f"No attachment with id {str(attachment_id)[:20]}")
    get_email(session, actor, att.email_id)  # the record's read right
    return att


def retry_email(session: Session, actor: Actor, email_id: Any) -> EmailMessage:
    """Queue a failed message again (a fresh set of attempts)."""
    msg = get_email(session, actor, email_id)
    if msg.direction != "out" or msg.status == "sent":
        raise ValidationFailed({"id": "only an unsent outgoing message can be retried"})
    if msg.entity_type:
        load_record(session, actor, msg.entity_type, msg.entity_id, "update")
    msg.status, msg.attempts, msg.next_attempt_at, msg.lease_until = "queued", 0, utcnow(), None
    session.flush()
    records.record_event(session, actor, entity=msg.entity_type or "mailbox",
                         entity_id=msg.entity_id or (msg.mailbox_id or 0),
                         action="email_retried", event_type=None,
                         changes={"email": [None, msg.subject[:200]]})
    return msg


def sender_address(raw: str) -> tuple[str, str]:
    name, addr = parseaddr(raw or "")
    return name, addr.strip().lower()


def from_header(msg: EmailMessage) -> Address:
    user, _, domain = msg.from_addr.partition("@")
    return Address(display_name=msg.from_name or "", username=user, domain=domain)
