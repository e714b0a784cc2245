"""Tables of the mail integration: mailboxes (a user's own, or the shared company one), the
messages sent and received, and their attachments.

Attachments are kept in the database (``email_attachment.data``), not on disk under
``instance/``: a message and its files are written in one transaction (an import that fails
leaves neither, two workers on different hosts see the same files), the backup of the database
carries them, and the download checks the record's read right with the same query. Each file
is capped by ``MAIL_ATTACHMENT_MAX_BYTES`` (10 MB by default); a larger one is listed with its
name and size but its content is left on the mail server.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_models.db import Base, UTCDateTime, utcnow

SECURITY_MODES = ("ssl", "starttls", "none")


class Mailbox(Base):
    """SMTP and IMAP settings of one mailbox; ``user_id`` None is the shared company one.

    The password is a Fernet token (``integrations.mail_crypto``), never plain text."""

    __tablename__ = "mailbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    smtp_host: Mapped[str] = mapped_column(String(255), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=465)
    smtp_security: Mapped[str] = mapped_column(String(10), default="ssl")
    imap_host: Mapped[str] = mapped_column(String(255), default="")
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(10), default="ssl")
    imap_folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    login: Mapped[str] = mapped_column(String(255), default="")
    password_enc: Mapped[str] = mapped_column(Text, default="")
    # IMAP's own login and password when they differ from SMTP's (empty: the same).
    imap_login: Mapped[str] = mapped_column(String(255), default="")
    imap_password_enc: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Unknown senders → a new lead, responsible in turn among these users.
    create_leads: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_user_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    lead_turn: Mapped[int] = mapped_column(Integer, default=0)
    # The poller's place in the folder, and its lease (one poller per mailbox at a time).
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    poll_lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_poll_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def shared(self) -> bool:
        return self.user_id is None


class EmailMessage(Base):
    """One e-mail, outgoing (queued → sent / failed, retried by the mail worker) or incoming
    (imported once per mailbox and Message-ID: the unique key stops a second poller)."""

    __tablename__ = "email_message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "direction", "message_id",
                         name="uq_email_message_mailbox_id"),
        Index("ix_email_message_entity", "entity_type", "entity_id"),
        Index("ix_email_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailbox.id", ondelete="SET NULL"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "out" | "in"
    status: Mapped[str] = mapped_column(String(10))  # queued, sent, failed, received
    message_id: Mapped[str] = mapped_column(String(255))
    in_reply_to: Mapped[str] = mapped_column(String(255), default="")
    references: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(String(255), default="")
    from_name: Mapped[str] = mapped_column(String(255), default="")
    to_addrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc_addrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    responsible_id: Mapped[int | None] = mapped_column(Integer)
    activity_id: Mapped[int | None] = mapped_column(Integer)
    invoice_id: Mapped[int | None] = mapped_column(Integer)  # "sent" once this went out
    pdf_lang: Mapped[str] = mapped_column(String(2), default="ru")  # the invoice PDF's layout
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "mailbox_id": self.mailbox_id, "direction": self.direction,
                "status": self.status, "message_id": self.message_id,
                "in_reply_to": self.in_reply_to, "references": self.references,
                "from": self.from_addr, "from_name": self.from_name, "to": self.to_addrs,
                "cc": self.cc_addrs, "subject": self.subject, "body": self.body,
                "entity_type": self.entity_type, "entity_id": self.entity_id,
                "invoice_id": self.invoice_id, "attempts": self.attempts,
                "last_error": self.last_error,
                "sent_at": self.sent_at.isoformat() if self.sent_at else None,
                "created_at": self.created_at.isoformat() if self.created_at else None}


class EmailAttachment(Base):
    __tablename__ = "email_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email_message.id", ondelete="CASCADE"),
                                          index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[bool] = mapped_column(Boolean, default=True)  # False: over the size limit
    data: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class EmailTemplate(Base):
    """A template admins write (beside the built-in ones): subject and text in Russian and
    English with ``{{ entity.field }}`` placeholders, checked when saved."""

    __tablename__ = "email_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    subject_ru: Mapped[str] = mapped_column(String(500), default="")
    body_ru: Mapped[str] = mapped_column(Text, default="")
    subject_en: Mapped[str] = mapped_column(String(500), default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "title": self.title,
                "subject_ru": self.subject_ru, "body_ru": self.body_ru,
                "subject_en": self.subject_en, "body_en": self.body_en,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None}
