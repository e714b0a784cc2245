"""The CRM activity feed's own rows: comments and likes on feed items, and @mentions.

A feed item is an ``AuditEvent`` on a lead, deal, contact or company; who may see one is
decided in ``crm_models.services.feed``. Mentions are written ``@Full Name`` or ``@e-mail``;
``find_mentions`` is a pure function so pages, services and the notifier read them alike.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime, utcnow
from .org import User


class FeedComment(Base):
    """A comment under a feed item; ``mentions`` are the ids of the users it names."""

    __tablename__ = "feed_comment"
    __table_args__ = (Index("ix_feed_comment_event", "event_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_event.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    author_label: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()


class FeedLike(Base):
    """One user's like of one feed item (at most one each)."""

    __tablename__ = "feed_like"
    __table_args__ = (UniqueConstraint("event_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_event.id", ondelete="CASCADE"),
                                          index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


_EMAIL = re.compile(r"@([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")


def find_mentions(text: str, users: Iterable[tuple[int, str, str]]) -> list[int]:
    """Ids of the users ``text`` mentions, in id order.

    ``users`` are ``(id, full name, e-mail)``. ``@e-mail`` matches case-insensitively;
    ``@Full Name`` matches a whole name (case-insensitively, not followed by a letter or
    digit), the longest name winning where one name starts another ("@Anna Ivanova" is not
    "@Anna"). Anything else after ``@`` is plain text.
    """
    if not text or "@" not in text:
        return []
    people = list(users)
    by_email = {email.casefold(): uid for uid, _name, email in people if email}
    found: set[int] = set()
    for m in _EMAIL.finditer(text):
        uid = by_email.get(m.group(1).casefold())
        if uid is not None:
            found.add(uid)
    folded = text.casefold()
    names = sorted(((name.casefold(), uid) for uid, name, _e in people if name.strip()),
                   key=lambda item: -len(item[0]))
    for pos in (m.start() for m in re.finditer("@", folded)):
        rest = folded[pos + 1:]
        for name, uid in names:
            if rest.startswith(name) and not _continues(rest, len(name)):
                found.add(uid)
                break
    return sorted(found)


def _continues(rest: str, end: int) -> bool:
    return end < len(rest) and (rest[end].isalnum() or rest[end] == "_")


def mention_candidates(rows: Iterable[Any]) -> list[tuple[int, str, str]]:
    """``(id, full name, e-mail)`` of active users, as ``find_mentions`` wants them."""
    return [(u.id, u.full_name, u.email) for u in rows if getattr(u, "active", True)]
