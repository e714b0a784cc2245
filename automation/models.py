"""Tables the bridge owns (on ``crm_models``' ``Base``; migration ``0003_automation``)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_models.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """A message for one user: written by the ``crm.notify`` service operation (kind
    ``process``) and by ``automation.notifications`` (new and overdue tasks, comments on the
    user's records, @mentions). ``dedup_key`` makes a notification happen once per user (the
    overdue one of a task); NULL keys never collide."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at", "id"),
                      UniqueConstraint("user_id", "dedup_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    source_label: Mapped[str] = mapped_column(String(300), default="")
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(20), default="process", server_default="process")
    task_id: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(Integer)  # a feed item (audit event)
    dedup_key: Mapped[str | None] = mapped_column(String(120))


class RoundRobinCursor(Base):
    """Who got the last item of a round-robin pool (``key`` e.g. ``"role:manager"``).

    The row is locked while the next member is chosen so concurrent assignments rotate.
    """

    __tablename__ = "round_robin_cursor"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
