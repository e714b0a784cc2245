"""Mail pages and wiring: mailbox settings (own and shared), "Test connection", composing
from a record's card, reading messages, attachments, "Send" on an invoice.

``init_app`` builds the password box (``MAIL_KEY`` or the secret key), the host guard
(``MAIL_HOST_ALLOWLIST``), the worker (``app.extensions["mail_worker"]``) and its scheduled
job, started with the app's other background work (``web.scheduling``) or by ``flask worker``.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from crm_models.errors import CrmError, NotFound, ValidationFailed
from crm_models.services import invoices as inv_svc
from integrations import mail_service as svc
from integrations.mail_crypto import PasswordBox
from integrations.mail_transport import MailError, MailGuard, test_server
from integrations.mail_worker import MailScheduler, MailWorker

from .auth import require_actor
from .database import get_db
from .pages.messages import translate

bp = Blueprint("mail", __name__, url_prefix="/mail")

KIND_LABELS = {"dns": _l("The server name cannot be resolved (DNS)"),
               "guard": _l("This server address is not allowed"),
               "connect": _l("No connection to the server"),
               "timeout": _l("The server did not answer in time"),
               "tls": _l("TLS (encryption) failed"),
               "login": _l("The login or password was refused"),
               "rejected": _l("The server refused the message"),
               "protocol": _l("The server answered unexpectedly"),
               "config": _l("The settings are incomplete"),
               "pdf": _l("The invoice PDF could not be made")}
STATUS_LABELS = {"queued": _l("Queued"), "sent": lazy_pgettext("e-mail", "Sent"), "failed": _l("Not sent"),
                 "received": _l("Received")}
MESSAGES = {"give at least one address": _l("give at least one address"),
            "this mailbox is switched off": _l("this mailbox is switched off"),
            "set up a mailbox first": _l("set up a mailbox first"),
            "the buyer's contact and company have no e-mail address":
                _l("the buyer's contact and company have no e-mail address"),
            "give the users who get the new leads in turn":
                _l("give the users who get the new leads in turn"),
            "must be a port number 1–65535": _l("must be a port number 1–65535"),
            "is not this deal's invoice": _l("is not this deal's invoice"),
            "an unclosed {{ or }}": _l("an unclosed {{ or }}"),
            "letters a-z, digits, - and _ (at most 60)":
                _l("letters a-z, digits, - and _ (at most 60)"),
            "give a subject or a text in at least one language":
                _l("give a subject or a text in at least one language"),
            "is not a message of this record": _l("is not a message of this record"),
            "only an unsent outgoing message can be retried":
                _l("only an unsent outgoing message can be retried")}
FIELD_LABELS = {"name": _l("Name"), "email": _l("E-mail address"),
                "display_name": _l("Sender name"), "login": _l("Login"),
                "password": _l("Password"), "imap_login": _l("IMAP login (if not the same)"),
                "imap_password": _l("IMAP password (if not the same)"),
                "smtp_host": _l("SMTP server"),
                "smtp_port": _l("SMTP port"), "smtp_security": _l("SMTP security"),
                "imap_host": _l("IMAP server"), "imap_port": _l("IMAP port"),
                "imap_security": _l("IMAP security"), "imap_folder": _l("IMAP folder"),
                "active": _l("Active"), "create_leads": _l("Unknown senders become leads"),
                "lead_user_ids": _l("Leads go in turn to (user ids)")}
SECURITY_LABELS = {"ssl": _l("SSL/TLS"), "starttls": _l("STARTTLS"), "none": _l("None")}
TEMPLATE_LABELS = {"blank": _l("Blank"), "follow_up": _l("Follow-up"),
                   "invoice": _l("Invoice")}


def mail_error_text(exc: MailError) -> str:
    return f"{KIND_LABELS.get(exc.kind, exc.kind)}: {exc.message}"


_PATTERNS = (
    (re.compile(r"^must be text of at most (?P<n>\d+) characters$"),
     lambda g: _("must be text of at most %(n)s characters", n=g["n"])),
    (re.compile(r"^not an e-mail address: (?P<v>.*)$"),
     lambda g: _("not an e-mail address: %(value)s", value=g["v"])),
    (re.compile(r"^at most (?P<n>\d+) addresses$"),
     lambda g: _("at most %(n)s addresses", n=g["n"])),
    (re.compile(r"^(?P<v>.*) is larger than (?P<n>\d+) MB$"),
     lambda g: _("%(name)s is larger than %(n)s MB", name=g["v"], n=g["n"])),
    (re.compile(r"^(?P<v>.*) is not a placeholder; write .*$", re.S),
     lambda g: _("%(value)s is not a placeholder; write {{ entity.field }}, e.g. "
                 "{{ deal.title }}", value=g["v"])),
    (re.compile(r"^(?P<v>.*): unknown record \"(?P<e>[a-z_]+)\"; use one of: (?P<l>.*)$", re.S),
     lambda g: _("%(value)s: unknown record \"%(entity)s\"; use one of: %(list)s",
                 value=g["v"], entity=g["e"], list=g["l"])),
    (re.compile(r"^(?P<v>.*): (?P<e>[a-z_]+) has no field \"(?P<f>[a-z_]+)\"$", re.S),
     lambda g: _("%(value)s: %(entity)s has no field \"%(field)s\"", value=g["v"],
                 entity=g["e"], field=g["f"])),
    (re.compile(r"^a template (?P<v>.*) exists already$"),
     lambda g: _("a template %(code)s exists already", code=g["v"])),
    (re.compile(r"^(?P<v>.*) is a built-in template$"),
     lambda g: _("%(code)s is a built-in template", code=g["v"])),
)


def _tr(message: str) -> str:
    if message in MESSAGES:
        return str(MESSAGES[message])
    for pattern, make in _PATTERNS:
        m = pattern.match(message)
        if m is not None:
            return str(make(m.groupdict()))
    if " is this machine;" in message or "an administrator can allow-list" in message:
        return f"{KIND_LABELS['guard']}: {message}"
    return translate(message)


def _tr_fields(fields: dict[str, str]) -> dict[str, str]:
    return {k: _tr(v) for k, v in fields.items()}


def init_app(app: Flask) -> None:
    cfg = app.config
    box = PasswordBox(cfg.get("MAIL_KEY") or cfg["SECRET_KEY"])
    guard = MailGuard.from_config(cfg.get("MAIL_HOST_ALLOWLIST"), ca_file=cfg.get("MAIL_CA_FILE"),
                                  timeout=float(cfg.get("MAIL_TIMEOUT") or 20))
    worker = MailWorker(app.extensions["db_sessionmaker"], box, guard,
                        pdf=lambda s, invoice_id, lang: render_invoice_pdf(app, s, invoice_id,
                                                                           lang),
                        attachment_limit=int(cfg["MAIL_ATTACHMENT_MAX_BYTES"]),
                        lease=dt.timedelta(seconds=float(cfg.get("MAIL_LEASE_SECONDS", 300))))
    app.extensions.update(mail_box=box, mail_guard=guard, mail_worker=worker)
    job = MailScheduler(worker, float(cfg.get("MAIL_POLL_SECONDS") or 60))
    app.extensions["mail_scheduler"] = job
    in_process = cfg.get("MAIL_THREAD")
    if in_process is None:
        in_process = cfg.get("RUN_SCHEDULER", False)
    if in_process:
        app.extensions.setdefault("background_starters", []).append(job.start)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(MAIL_STATUS_LABELS=STATUS_LABELS, mail_record_url=record_url,
                                 emails_of=_emails_of, mail_files=_files_of)


PLURALS = {"lead": "leads", "deal": "deals", "contact": "contacts", "company": "companies"}


def record_url(entity_type: str, entity_id: int) -> str:
    if entity_type == "invoice":
        return url_for("pages.invoice_card", invoice_id=entity_id)
    return url_for("pages.record_card", plural=PLURALS[entity_type], record_id=entity_id)


def _emails_of(entity_type: str, entity_id: int) -> list[Any]:
    try:
        return svc.list_emails(get_db(), require_actor(), entity_type=entity_type,
                               entity_id=entity_id, limit=50)
    except CrmError:
        return []


def _files_of(email_id: int) -> list[Any]:
    return svc.attachments_of(get_db(), email_id)


def render_invoice_pdf(app: Flask, session: Any, invoice_id: int,
                       lang: str = "ru") -> tuple[str, bytes]:
    from crm_models.invoices import Invoice
    from crm_models.services.images import invoice_images

    from .invoice_pdf import invoice_pdf

    inv = session.get(Invoice, invoice_id)
    if inv is None:
        raise ValueError(f"no invoice {invoice_id}")
    with app.app_context():
        pdf = invoice_pdf(inv, inv_svc.invoice_rows(session, inv.id),
                          "en" if lang == "en" else "ru", invoice_images(session, inv.seller or {}))
    return f"invoice-{inv.year}-{inv.seq}.pdf", pdf


@bp.before_request
def _login() -> Any:
    if g.get("user") is None:
        return redirect(url_for("login", next=request.full_path.rstrip("?")))
    return None


def _max_bytes() -> int:
    return int(current_app.config["MAIL_ATTACHMENT_MAX_BYTES"])


# --- mailboxes ---------------------------------------------------------------------------------

@bp.get("/")
def inbox() -> Any:
    actor = require_actor()
    db = get_db()
    return render_template("mail/inbox.html", section="mail",
                           messages=svc.list_emails(db, actor, limit=200),
                           mailboxes=svc.mailboxes_for(db, actor))


@bp.route("/mailboxes/new", methods=["GET", "POST"], defaults={"mailbox_id": None})
@bp.route("/mailboxes/<int:mailbox_id>", methods=["GET", "POST"])
def mailbox_form(mailbox_id: int | None) -> Any:
    actor = require_actor()
    db = get_db()
    mb = svc.get_mailbox(db, actor, mailbox_id, manage=True) if mailbox_id else None
    shared = mb.shared if mb else request.values.get("shared") == "1"
    if shared and not actor.is_admin:
        abort(403)
    values: dict[str, Any] = svc.mailbox_dict(mb) if mb else {
        "smtp_port": 465, "smtp_security": "ssl", "imap_port": 993, "imap_security": "ssl",
        "imap_folder": "INBOX", "active": True}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in svc.MAILBOX_FIELDS}
        for flag in ("active", "create_leads"):
            form[flag] = flag in request.form
        try:
            saved = svc.save_mailbox(db, actor, current_app.extensions["mail_box"],
                                     current_app.extensions["mail_guard"],
                                     mailbox_id=mailbox_id, shared=shared, **form)
            saved_id = saved.id
            db.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("mail.mailbox_form", mailbox_id=saved_id))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = _tr_fields(exc.fields), 422
            values = {**values, **form}
    return render_template("mail/mailbox.html", section="mail", mb=mb, values=values,
                           errors=errors, shared=shared, labels=FIELD_LABELS,
                           security=SECURITY_LABELS), status


@bp.post("/mailboxes/<int:mailbox_id>/test")
def mailbox_test(mailbox_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    mb = svc.get_mailbox(db, actor, mailbox_id, manage=True)
    for line, ok in connection_report(mb):
        flash(line, "success" if ok else "error")
    return redirect(url_for("mail.mailbox_form", mailbox_id=mailbox_id))


def connection_report(mb: Any) -> list[tuple[str, bool]]:
    """One line per server: what worked, or exactly what failed."""
    box, guard = current_app.extensions["mail_box"], current_app.extensions["mail_guard"]
    try:
        checks = [("smtp", svc.smtp_server(box, mb))]
        if mb.imap_host:
            checks.append(("imap", svc.imap_server(box, mb)))
    except ValueError:
        return [(_("The stored password cannot be decrypted; enter it again."), False)]
    out = []
    for kind, server in checks:
        try:
            test_server(guard, kind, server, mb.imap_folder)
            out.append((_("%(kind)s: connected and logged in.", kind=kind.upper()), True))
        except MailError as exc:
            out.append((f"{kind.upper()}: {mail_error_text(exc)}", False))
    return out


@bp.post("/mailboxes/<int:mailbox_id>/delete")
def mailbox_delete(mailbox_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    svc.delete_mailbox(db, actor, mailbox_id)
    db.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for("mail.inbox"))


# --- messages ----------------------------------------------------------------------------------

@bp.route("/compose/<entity_type>/<int:entity_id>", methods=["GET", "POST"])
def compose(entity_type: str, entity_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    if entity_type not in svc.MAIL_ENTITIES:
        abort(404)
    record = svc.load_record(db, actor, entity_type, entity_id)
    boxes = [m for m in svc.mailboxes_for(db, actor) if m.active]
    addresses = svc.record_addresses(db, record)
    lang = request.values.get("lang") or getattr(actor, "locale", "ru")
    template = request.values.get("template", "invoice" if entity_type == "invoice"
                                  else "blank")
    ctx = svc.template_context(db, actor, record)
    try:
        subj_t, body_t = svc.template_text(template, lang, db)
    except ValidationFailed:
        subj_t, body_t = "", ""
    invoices = ([record] if entity_type == "invoice" else
                inv_svc.list_invoices(db, actor, deal_id=record.id, per_page=20).items
                if entity_type == "deal" and actor.level("invoice", "read") else [])
    thread = [m for m in svc.list_emails(db, actor, entity_type=entity_type,
                                         entity_id=entity_id, limit=20)]
    values: dict[str, Any] = {
        "mailbox_id": str(boxes[0].id) if boxes else "", "to": addresses[:1], "cc": "",
        "subject": svc.render(subj_t, ctx), "body": svc.render(body_t, ctx),
        "attach_invoice_id": str(record.id) if entity_type == "invoice" else "",
        "reply_to_id": next((str(m.id) for m in thread if m.direction == "in"), "")}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in ("mailbox_id", "cc", "subject", "body",
                                                      "attach_invoice_id", "reply_to_id")}
        values["to"] = request.form.getlist("to") + [
            a for a in request.form.get("to_extra", "").replace(";", ",").split(",")
            if a.strip()]
        uploads = [svc.Upload(f.filename or "file", f.mimetype or "application/octet-stream",
                              f.read()) for f in request.files.getlist("files") if f.filename]
        try:
            msg = svc.queue_email(
                db, actor, mailbox_id=int(values["mailbox_id"]) if values["mailbox_id"]
                .isdigit() else values["mailbox_id"], entity_type=entity_type,
                entity_id=entity_id, to=values["to"], cc=values["cc"],
                subject=values["subject"], body=values["body"], attachments=uploads,
                attach_invoice_id=int(values["attach_invoice_id"])
                if values["attach_invoice_id"].isdigit() else None,
                reply_to_id=int(values["reply_to_id"]) if values["reply_to_id"].isdigit()
                else None, max_attachment_bytes=_max_bytes(), pdf_lang=lang)
            msg_id = msg.id
            db.commit()
            current_app.extensions["mail_scheduler"].wake()
            flash(_("The e-mail is queued for sending."), "success")
            return redirect(url_for("mail.message", email_id=msg_id))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = _tr_fields(exc.fields), 422
    return render_template("mail/compose.html", section="mail", record=record,
                           entity_type=entity_type, boxes=boxes, addresses=addresses,
                           values=values, errors=errors,
                           templates={**TEMPLATE_LABELS, **dict(svc.template_choices(db))},
                           template=template, lang=lang, invoices=invoices,
                           thread=thread), status


# --- templates written by admins -----------------------------------------------------------

@bp.get("/templates")
def templates() -> Any:
    actor = require_actor()
    actor.require_flag("manage_settings")
    db = get_db()
    return render_template("mail/templates.html", section="mail",
                           items=db.scalars(svc.select(svc.EmailTemplate)
                                            .order_by(svc.EmailTemplate.title)).all())


@bp.route("/templates/new", methods=["GET", "POST"], defaults={"template_id": None})
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
def template_form(template_id: int | None) -> Any:
    actor = require_actor()
    actor.require_flag("manage_settings")
    db = get_db()
    t = svc.get_template(db, actor, template_id) if template_id else None
    values = t.summary() if t else {k: "" for k in svc.TEMPLATE_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if request.form.get("delete") and t is not None:
            svc.delete_template(db, actor, t.id)
            db.commit()
            flash(_("The template is deleted."), "success")
            return redirect(url_for("mail.templates"))
        values = {k: request.form.get(k, "") for k in svc.TEMPLATE_FIELDS}
        try:
            svc.save_template(db, actor, template_id=template_id, **values)
            db.commit()
            flash(_("The template is saved."), "success")
            return redirect(url_for("mail.templates"))
        except ValidationFailed as exc:
            db.rollback()
            errors, status = _tr_fields(exc.fields), 422
    return render_template("mail/template.html", section="mail", t=t, values=values,
                           errors=errors), status


@bp.get("/<int:email_id>")
def message(email_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    msg = svc.get_email(db, actor, email_id)
    return render_template("mail/message.html", section="mail", msg=msg,
                           files=svc.attachments_of(db, msg.id),
                           error=msg.last_error)


@bp.post("/<int:email_id>/retry")
def retry(email_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    try:
        svc.retry_email(db, actor, email_id)
        db.commit()
        current_app.extensions["mail_scheduler"].wake()
        flash(_("The e-mail is queued for sending."), "success")
    except ValidationFailed as exc:
        db.rollback()
        flash("; ".join(_tr(v) for v in exc.fields.values()), "error")
    return redirect(url_for("mail.message", email_id=email_id))


@bp.get("/attachments/<int:attachment_id>")
def attachment(attachment_id: int) -> Any:
    actor = require_actor()
    att = svc.get_attachment(get_db(), actor, attachment_id)
    if not att.stored:
        abort(404)
    return attachment_response(att)


def attachment_response(att: Any) -> Response:
    from urllib.parse import quote

    # Served as a download, never inline: the sender chose the content type.
    return Response(att.data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(att.filename)}",
        "X-Content-Type-Options": "nosniff"})


@bp.post("/invoices/<int:invoice_id>/send")
def invoice_send(invoice_id: int) -> Any:
    actor = require_actor()
    db = get_db()
    try:
        svc.send_invoice(db, actor, invoice_id, lang=getattr(actor, "locale", "ru"))
        db.commit()
        current_app.extensions["mail_scheduler"].wake()
        flash(_("The invoice is queued for sending; it becomes \"sent\" once it went out."),
              "success")
    except (ValidationFailed, CrmError) as exc:
        db.rollback()
        if isinstance(exc, NotFound):
            raise
        flash("; ".join(_tr(v) for v in exc.fields.values()) if exc.fields
              else translate(exc.message), "error")
    return redirect(url_for("pages.invoice_card", invoice_id=invoice_id))

