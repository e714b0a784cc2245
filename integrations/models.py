"""Tables of the Bitrix24-compatible integration: incoming webhooks, outgoing event handlers,
their deliveries, and the delivery worker's cursor over the outbox."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_models.db import Base, UTCDateTime, utcnow
from crm_models.org import User


class IncomingWebhook(Base):
    """A user's webhook: ``/rest/<user_id>/<secret>/<method>`` acts with that user's rights.

    Only the SHA-256 of the secret is kept. The leaky-bucket state (``bucket_level`` requests
    "in the bucket" as of ``bucket_at``) lives here so every app process shares one limit;
    ``bucket_version`` makes its update a compare-and-swap.
    """

    __tablename__ = "bitrix_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bucket_level: Mapped[float] = mapped_column(Float, default=0.0)
    bucket_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bucket_version: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        """Not revoked, neither by itself nor with all of its user's credentials (a password
        change that revoked them: ``User.credentials_revoked_at``)."""
        cutoff = self.user.credentials_revoked_at if self.user is not None else None
        return self.revoked_at is None and (cutoff is None or self.created_at > cutoff)


class EventHandler(Base):
    """An outgoing webhook: POST Bitrix-style event notifications for ``event`` to ``url``."""

    __tablename__ = "bitrix_event_handler"

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(40), index=True)  # ONCRMDEALADD …
    url: Mapped[str] = mapped_column(String(1000))
    application_token: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))


class Delivery(Base):
    """One event notification for one handler: pending until sent, retried with back-off,
    ``failed`` once its attempts are used up."""

    __tablename__ = "bitrix_delivery"
    __table_args__ = (
        UniqueConstraint("handler_id", "outbox_event_id"),
        Index("ix_bitrix_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    handler_id: Mapped[int] = mapped_column(
        ForeignKey("bitrix_event_handler.id", ondelete="CASCADE"))
    outbox_event_id: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    handler: Mapped[EventHandler] = relationship()


class DeliveryCursor(Base):
    """How far the delivery worker has scanned the outbox (its own cursor: the outbox's
    ``dispatched_at`` belongs to the process dispatcher)."""

    __tablename__ = "bitrix_delivery_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_outbox_id: Mapped[int] = mapped_column(Integer, default=0)
