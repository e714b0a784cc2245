"""The mail worker: sends queued e-mails (retrying failures with back-off) and imports new
messages from the mailboxes' IMAP folders. A scheduled job runs ``run_once`` (see
``web.mail``); any number of workers may run it at once.

Sending: each due message is claimed with a lease (a conditional UPDATE) before the SMTP
call, and no transaction stays open during it. A retryable failure (DNS, connection, timeout,
a 4xx) waits ``backoff(attempts)``; a permanent one (login refused, TLS mode wrong, recipient
refused) or the last attempt marks it ``failed`` — still stored, shown on the record with the
reason, and sent again by "Retry". Nothing is deleted.

Importing: a mailbox is polled under a lease; its cursor (UIDVALIDITY + last UID) moves after
each imported message. The unique key (mailbox, direction, Message-ID) is the backstop: a
second poller — one whose lease expired, or a cursor reset by a new UIDVALIDITY — finds the
message there and skips it. A message without a Message-ID gets one from its UID.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, getaddresses
from typing import Any

from sqlalchemy import String as SqlString
from sqlalchemy import cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crm_models.db import utcnow
from crm_models.entities import Company, Contact, Lead
from crm_models.errors import CrmError
from crm_models.invoices import Invoice
from crm_models.org import User
from crm_models.permissions import system_actor
from crm_models.services import activities, records
from crm_models.services import invoices as invoice_services

from .mail_crypto import PasswordBox, PasswordUnreadable
from .mail_models import EmailAttachment, EmailMessage, Mailbox
from .mail_service import email_event, from_header, imap_server, sender_address, smtp_server
from .mail_transport import MailError, MailGuard, Server, imap_new_messages, imap_session, smtp_send

log = logging.getLogger(__name__)

#: (invoice id, layout ru/en) → (file name, PDF bytes); given by the web layer (the PDF
#: needs templates).
PdfRenderer = Callable[[Session, int, str], tuple[str, bytes]]
#: Domains shared by many people: a sender there says nothing about their company.
PUBLIC_DOMAINS = frozenset({"gmail.com", "mail.ru", "yandex.ru", "ya.ru", "outlook.com",
                            "hotmail.com", "yahoo.com", "icloud.com", "bk.ru", "list.ru",
                            "inbox.ru", "rambler.ru", "proton.me", "protonmail.com"})


@dataclass
class MailWorker:
    sessions: sessionmaker
    box: PasswordBox
    guard: MailGuard = field(default_factory=MailGuard)
    pdf: PdfRenderer | None = None
    clock: Callable[[], dt.datetime] = utcnow
    max_attempts: int = 8
    base_delay: dt.timedelta = dt.timedelta(minutes=1)
    max_delay: dt.timedelta = dt.timedelta(hours=6)
    lease: dt.timedelta = dt.timedelta(minutes=5)
    attachment_limit: int = 10 * 1024 * 1024
    batch: int = 50

    def backoff(self, attempts: int) -> dt.timedelta:
        return min(self.base_delay * (2 ** max(0, attempts - 1)), self.max_delay)

    def run_once(self) -> tuple[int, int]:
        """Send what is due, then poll every mailbox with IMAP; (sent, imported)."""
        sent = self.send_due()
        imported = 0
        with self.sessions() as s:
            ids = list(s.scalars(select(Mailbox.id).where(Mailbox.active.is_(True),
                                                          Mailbox.imap_host != "")))
        for mailbox_id in ids:
            try:
                imported += self.poll(mailbox_id)
            except MailError:
                pass  # recorded on the mailbox by ``poll``
        return sent, imported

    # --- sending ------------------------------------------------------------------------------

    def send_due(self) -> int:
        now = self.clock()
        with self.sessions(write=True) as s:
            due = list(s.scalars(select(EmailMessage.id).where(
                EmailMessage.direction == "out", EmailMessage.status == "queued",
                EmailMessage.next_attempt_at <= now,
                or_(EmailMessage.lease_until.is_(None), EmailMessage.lease_until < now))
                .order_by(EmailMessage.id).limit(self.batch)))
        sent = 0
        for email_id in due:
            sent += self.send_one(email_id)
        return sent

    def send_one(self, email_id: int) -> int:
        now = self.clock()
        with self.sessions(write=True) as s:
            claimed = s.execute(update(EmailMessage).where(
                EmailMessage.id == email_id, EmailMessage.status == "queued",
                or_(EmailMessage.lease_until.is_(None), EmailMessage.lease_until < now))
                .values(lease_until=now + self.lease)
                .execution_options(synchronize_session=False)).rowcount
            s.commit()
            if not claimed:
                return 0
            try:
                msg = s.get(EmailMessage, email_id)
                assert msg is not None
                mb = s.get(Mailbox, msg.mailbox_id) if msg.mailbox_id else None
                if mb is None:
                    raise MailError("config", "the mailbox was deleted", retryable=False)
                server = self._server(smtp_server, mb)
                self._attach_invoice(s, msg)
                raw = build_mime(msg, attachments_of(s, msg.id))
                rcpts = [*msg.to_addrs, *msg.cc_addrs]
                s.commit()  # no transaction open during SMTP
                smtp_send(self.guard, server, msg.from_addr, rcpts, raw)
            except MailError as exc:
                s.rollback()
                self._failed(s, email_id, exc)
                return 0
            self._sent(s, email_id)
        return 1

    def _server(self, make: Callable[[PasswordBox, Mailbox], Server], mb: Mailbox) -> Server:
        try:
            return make(self.box, mb)
        except PasswordUnreadable as exc:
            raise MailError("login", str(exc), retryable=False) from None

    def _attach_invoice(self, s: Session, msg: EmailMessage) -> None:
        if msg.invoice_id is None or self.pdf is None:
            return
        if any(a.content_type == "application/pdf" and a.filename.startswith("invoice")
               for a in attachments_of(s, msg.id)):
            return
        try:
            name, data = self.pdf(s, msg.invoice_id, msg.pdf_lang or "ru")
        except Exception as exc:  # noqa: BLE001 - reported on the message, retried
            raise MailError("pdf", f"the invoice PDF could not be made: {exc}"[:300]) from None
        s.add(EmailAttachment(email_id=msg.id, filename=name, content_type="application/pdf",
                              size=len(data), data=data))
        s.flush()

    def _failed(self, s: Session, email_id: int, exc: MailError) -> None:
        msg = s.get(EmailMessage, email_id)
        assert msg is not None
        attempts = msg.attempts + 1
        msg.attempts, msg.lease_until = attempts, None
        msg.last_error = str(exc)[:2000]
        if not exc.retryable or attempts >= self.max_attempts:
            msg.status = "failed"
        else:
            msg.next_attempt_at = self.clock() + self.backoff(attempts)
        if msg.entity_type and msg.entity_id:
            records.record_event(s, system_actor("mail"), entity=msg.entity_type,
                                 entity_id=msg.entity_id, action="email_failed",
                                 event_type="email.failed" if msg.status == "failed" else None,
                                 changes={"email_error": [None, msg.last_error[:300]]},
                                 payload={"email": email_event(msg), "error": msg.last_error},
                                 responsible_id=msg.responsible_id)
        s.commit()

    def _sent(self, s: Session, email_id: int) -> None:
        msg = s.get(EmailMessage, email_id)
        assert msg is not None
        msg.status, msg.sent_at, msg.lease_until = "sent", self.clock(), None
        msg.attempts += 1
        msg.last_error = ""
        actor = system_actor("mail")
        if msg.activity_id:
            try:
                activities.complete_activity(s, actor, msg.activity_id)
            except CrmError:
                pass  # the activity was deleted: the message itself is what counts
        if msg.invoice_id:
            inv = s.get(Invoice, msg.invoice_id)
            if inv is not None and inv.stage == "draft":
                invoice_services.mark_invoice_sent(s, actor, inv.id)
        if msg.entity_type and msg.entity_id:
            records.record_event(s, actor, entity=msg.entity_type, entity_id=msg.entity_id,
                                 action="email_sent", event_type="email.sent",
                                 changes={"email": [None, msg.subject[:200]]},
                                 payload={"email": email_event(msg)},
                                 responsible_id=msg.responsible_id)
        s.commit()

    # --- importing ----------------------------------------------------------------------------

    def poll(self, mailbox_id: int) -> int:
        """Import the mailbox's new messages; how many were imported by this call."""
        now = self.clock()
        with self.sessions(write=True) as s:
            claimed = s.execute(update(Mailbox).where(
                Mailbox.id == mailbox_id,
                or_(Mailbox.poll_lease_until.is_(None), Mailbox.poll_lease_until < now))
                .values(poll_lease_until=now + self.lease)
                .execution_options(synchronize_session=False)).rowcount
            s.commit()
            if not claimed:
                return 0
            try:
                return self._poll(s, mailbox_id)
            finally:
                s.rollback()
                s.execute(update(Mailbox).where(Mailbox.id == mailbox_id)
                          .values(poll_lease_until=None)
                          .execution_options(synchronize_session=False))
                s.commit()

    def _poll(self, s: Session, mailbox_id: int) -> int:
        mb = s.get(Mailbox, mailbox_id)
        assert mb is not None
        try:
            server = self._server(imap_server, mb)
            folder, after, validity = mb.imap_folder, mb.imap_last_uid, mb.imap_uidvalidity
            s.commit()
            imported = 0
            with imap_session(self.guard, server, folder) as (conn, uidvalidity):
                if validity != uidvalidity:
                    after = 0  # a new folder generation: Message-IDs keep it to once
                try:
                    messages = imap_new_messages(conn, after)
                except (OSError, EOFError) as exc:
                    raise MailError("connect", f"IMAP {mb.imap_host}: {exc}") from None
                for uid, raw in messages:
                    imported += self._import(s, mailbox_id, uidvalidity, uid, raw)
            s.execute(update(Mailbox).where(Mailbox.id == mailbox_id)
                      .values(last_poll_at=self.clock(), last_error="")
                      .execution_options(synchronize_session=False))
            s.commit()
            log.info("mailbox %s: %d of %d new message(s) imported", mailbox_id, imported,
                     len(messages))
            return imported
        except MailError as exc:
            s.rollback()
            s.execute(update(Mailbox).where(Mailbox.id == mailbox_id)
                      .values(last_poll_at=self.clock(), last_error=str(exc)[:2000])
                      .execution_options(synchronize_session=False))
            s.commit()
            raise

    def _import(self, s: Session, mailbox_id: int, uidvalidity: int, uid: int,
                raw: bytes) -> int:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = str(parsed.get("Message-ID") or "").strip()[:255] or (
            f"<uid-{uidvalidity}-{uid}.mailbox-{mailbox_id}@marshrut.invalid>")
        done = 0
        try:
            with s.begin_nested():
                exists = s.scalar(select(EmailMessage.id).where(
                    EmailMessage.mailbox_id == mailbox_id, EmailMessage.direction == "in",
                    EmailMessage.message_id == message_id))
                if exists is None:
                    self._file(s, mailbox_id, parsed, message_id, uid)
                    done = 1
        except IntegrityError:
            done = 0  # another poller imported it first
        s.execute(update(Mailbox).where(Mailbox.id == mailbox_id).values(
            imap_uidvalidity=uidvalidity,
            imap_last_uid=func.max(Mailbox.imap_last_uid, uid)
            if s.get_bind().dialect.name == "sqlite" else func.greatest(Mailbox.imap_last_uid,
                                                                        uid))
            .execution_options(synchronize_session=False))
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            return 0
        return done

    def _file(self, s: Session, mailbox_id: int, parsed: Any, message_id: str,
              uid: int) -> None:
        mb = s.get(Mailbox, mailbox_id)
        assert mb is not None
        name, addr = sender_address(str(parsed.get("From") or ""))
        in_reply_to = str(parsed.get("In-Reply-To") or "").strip()[:255]
        references = " ".join(str(parsed.get("References") or "").split())[-4000:]
        subject = " ".join(str(parsed.get("Subject") or "").split())[:500]
        body = _text_body(parsed)
        to = [a for _n, a in getaddresses([str(v) for v in parsed.get_all("To") or []]) if a]
        actor = system_actor("mail")
        entity, entity_id, responsible = self._match(s, mb, addr, name, subject,
                                                     [in_reply_to, *references.split()])
        msg = EmailMessage(
            mailbox_id=mailbox_id, direction="in", status="received", message_id=message_id,
            in_reply_to=in_reply_to, references=references, from_addr=addr[:255],
            from_name=name[:255], to_addrs=to[:50], subject=subject, body=body[:200_000],
            entity_type=entity, entity_id=entity_id, responsible_id=responsible, imap_uid=uid,
            sent_at=_date(parsed), created_at=self.clock())
        s.add(msg)
        s.flush()
        for part in parsed.iter_attachments():
            data = part.get_payload(decode=True) or b""
            filename = (part.get_filename() or "attachment")[:255]
            keep = len(data) <= self.attachment_limit
            s.add(EmailAttachment(email_id=msg.id, filename=filename,
                                  content_type=part.get_content_type()[:100], size=len(data),
                                  stored=keep, data=data if keep else b""))
        if entity is not None and entity_id is not None:
            act = activities.add_activity(
                s, actor, entity_type=entity, entity_id=entity_id, type="email",
                subject=(subject or "(no subject)")[:255], description=body[:20000],
                responsible_id=responsible)
            act.done = True
            msg.activity_id = act.id
            records.record_event(s, actor, entity=entity, entity_id=entity_id,
                                 action="email_received", event_type="email.received",
                                 changes={"email": [None, subject[:200]]},
                                 payload={"email": email_event(msg)},
                                 responsible_id=responsible)
        s.flush()

    def _match(self, s: Session, mb: Mailbox, addr: str, name: str, subject: str,
               thread: list[str]) -> tuple[str | None, int | None, int | None]:
        """The record the message belongs to: the one our message it answers is filed on,
        else the contact, company or lead with the sender's address, else a new lead."""
        ids = [t for t in thread if t][:50]
        if ids:
            ours = s.execute(select(EmailMessage.entity_type, EmailMessage.entity_id)
                             .where(EmailMessage.message_id.in_(ids),
                                    EmailMessage.entity_type.is_not(None))
                             .order_by(EmailMessage.id.desc()).limit(1)).first()
            if ours is not None:
                model = records.model_for(ours[0]) if ours[0] != "invoice" else Invoice
                rec = s.get(model, ours[1])
                if rec is not None:
                    return ours[0], ours[1], rec.responsible_id
        if addr:
            for model in (Contact, Company, Lead):
                rec = _by_address(s, model, addr)
                if rec is not None:
                    return model.entity_type, rec.id, rec.responsible_id
        if not mb.create_leads or not addr:
            return None, None, None
        try:
            lead = self._new_lead(s, mb, addr, name, subject)
        except CrmError as exc:  # kept unfiled (in the mailbox's list) rather than stuck
            log.warning("mail from %s: no lead made: %s", addr, exc)
            return None, None, None
        return "lead", lead.id, lead.responsible_id

    def _new_lead(self, s: Session, mb: Mailbox, addr: str, name: str, subject: str) -> Lead:
        users = [u for u in (s.get(User, i) for i in mb.lead_user_ids or []) if u and u.active]
        if users:
            turn = mb.lead_turn % len(users)
            responsible = users[turn].id
            mb.lead_turn = turn + 1
        elif mb.user_id is not None:
            responsible = mb.user_id
        else:
            raise MailError("config", "no user to make responsible for new leads",
                            retryable=False)
        first, _, last = name.partition(" ")
        data: dict[str, Any] = {
            "title": (subject or f"E-mail from {addr}")[:255], "source": "EMAIL",
            "first_name": first[:100], "last_name": last[:100],
            "emails": [{"value": addr, "value_type": "WORK"}], "responsible_id": responsible}
        domain = addr.rpartition("@")[2]
        if domain and domain not in PUBLIC_DOMAINS:
            company = _by_address(s, Company, "@" + domain, domain=True)
            if company is not None:
                data["company_title"] = company.title
        return records.create(s, system_actor("mail"), "lead", data)


def _by_address(s: Session, model: Any, addr: str, *, domain: bool = False) -> Any:
    """The oldest record of ``model`` with this e-mail address (or, with ``domain``, any
    address ending in ``addr``, e.g. ``@vector.example``)."""
    needle = addr.lower()
    rows = s.scalars(select(model).where(cast(model.emails, SqlString).ilike(f"%{needle}%"))
                     .order_by(model.id).limit(50))
    for rec in rows:
        for e in rec.emails or []:
            value = str(e.get("value", "")).strip().lower() if isinstance(e, dict) else ""
            if (value.endswith(needle) if domain else value == needle):
                return rec
    return None


def attachments_of(s: Session, email_id: int) -> list[EmailAttachment]:
    return list(s.scalars(select(EmailAttachment).where(EmailAttachment.email_id == email_id)
                          .order_by(EmailAttachment.id)))


def _text_body(parsed: Any) -> str:
    part = parsed.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return str(text).replace("\x00", "")


def _date(parsed: Any) -> dt.datetime | None:
    try:
        value = parsed.get("Date")
        when = value.datetime if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.astimezone(dt.UTC)


def build_mime(msg: EmailMessage, files: list[EmailAttachment]) -> bytes:
    """The message as sent: UTF-8 headers (RFC 2047 words for Cyrillic), a text body, the
    attachments; ``Message-ID`` and, for a reply, ``In-Reply-To``/``References``."""
    mime = MimeMessage(policy=email.policy.SMTP)
    mime["From"] = from_header(msg)
    mime["To"] = ", ".join(msg.to_addrs)
    if msg.cc_addrs:
        mime["Cc"] = ", ".join(msg.cc_addrs)
    mime["Subject"] = msg.subject
    mime["Date"] = format_datetime(msg.created_at or utcnow())
    mime["Message-ID"] = msg.message_id
    if msg.in_reply_to:
        mime["In-Reply-To"] = msg.in_reply_to
    if msg.references:
        mime["References"] = msg.references
    mime.set_content(msg.body or "", subtype="plain", charset="utf-8")
    for f in files:
        if not f.stored:
            continue
        main, _, sub = f.content_type.partition("/")
        mime.add_attachment(f.data, maintype=main or "application",
                            subtype=sub or "octet-stream", filename=f.filename)
    return mime.as_bytes()


class MailScheduler:
    """The scheduled job: ``worker.run_once`` on an APScheduler interval trigger (one run at
    a time per process; other processes coordinate through the leases)."""

    JOB_ID = "marshrut-mail"

    def __init__(self, worker: MailWorker, seconds: float = 60.0) -> None:
        self.worker, self.seconds = worker, seconds
        self._scheduler: Any = None
        self._state = threading.Lock()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        with self._state:
            if self.running:
                return
            sched = BackgroundScheduler(
                timezone=dt.UTC, executors={"default": ThreadPoolExecutor(1)},
                job_defaults={"coalesce": True, "max_instances": 1,
                              "misfire_grace_time": None})
            sched.add_job(self._run, IntervalTrigger(seconds=self.seconds), id=self.JOB_ID,
                          next_run_time=dt.datetime.now(dt.UTC))
            sched.start()
            self._scheduler = sched

    def wake(self) -> None:
        sched = self._scheduler
        if sched is not None and sched.running:
            job = sched.get_job(self.JOB_ID)
            if job is not None:
                job.modify(next_run_time=dt.datetime.now(dt.UTC))

    def stop(self, wait: bool = True) -> None:
        with self._state:
            if self.running:
                self._scheduler.shutdown(wait=wait)
            self._scheduler = None

    def _run(self) -> None:
        try:
            self.worker.run_once()
        except Exception:  # noqa: BLE001 - the next run tries again
            log.exception("mail pass failed")
