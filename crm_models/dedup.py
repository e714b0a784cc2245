"""Duplicate keys of contacts and companies: normalised phones, e-mails and ИНН.

Each contact and company has one ``dedup_key`` row per key it carries, kept by the service
layer (``records.create``/``update``/``delete``), so "who else has +7 999 123-45-67?" is one
indexed lookup — for a card's "Дубликаты" check, a lead conversion and an import of
100,000 rows alike.

Normalisation: phones to E.164 (Russian habits: ``8 (999) …`` and ``7 999 …`` and a bare
ten-digit ``999 …`` all mean ``+7 999 …``), e-mails case-folded, ИНН as its digits.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Index, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base

#: Entities with a "Дубликаты" check on their card and an admin merge.
DEDUP_ENTITIES = ("contact", "company")
#: Entities whose phone / e-mail / ИНН keys are kept (leads too: an import matches them).
KEYED_ENTITIES = (*DEDUP_ENTITIES, "lead")
KINDS = ("phone", "email", "inn")


class DedupKey(Base):
    __tablename__ = "dedup_key"
    __table_args__ = (Index("ix_dedup_key_lookup", "entity_type", "kind", "value"),
                      Index("ix_dedup_key_record", "entity_type", "entity_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(254))


def normalize_phone(raw: str) -> str | None:
    """E.164 (``+79991234567``) or None when it cannot be a phone number.

    ``8 999 …`` (11 digits from 8) and ``7 999 …`` are Russian numbers, as is a bare
    ten-digit number starting with 9, 8, 4 or 3 (mobile and area codes); ``+`` numbers keep
    their country code; ``810…`` is the old Russian international prefix."""
    if not isinstance(raw, str):
        return None
    digits = "".join(ch for ch in raw if "0" <= ch <= "9")
    plus = raw.strip().startswith("+")
    if plus:
        return "+" + digits if 8 <= len(digits) <= 15 else None
    if digits.startswith("810") and len(digits) > 11:
        digits = digits[3:]
        return "+" + digits if 8 <= len(digits) <= 15 else None
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] in "3489":
        return "+7" + digits
    if 8 <= len(digits) <= 15:
        return "+" + digits
    return None


def normalize_email(raw: str) -> str | None:
    if not isinstance(raw, str) or "@" not in raw:
        return None
    value = raw.strip().casefold()
    return value[:254] or None


def normalize_inn(raw: Any) -> str | None:
    digits = "".join(ch for ch in str(raw or "") if "0" <= ch <= "9")
    return digits if len(digits) in (10, 12) else None


def keys_of(*, phones: Iterable[Any] = (), emails: Iterable[Any] = (),
            inn: Any = None) -> set[tuple[str, str]]:
    """The (kind, value) keys of these channels; items may be strings or ``{"value": …}``."""
    out: set[tuple[str, str]] = set()
    for item in phones or ():
        value = normalize_phone(item.get("value") if isinstance(item, dict) else item)
        if value:
            out.add(("phone", value))
    for item in emails or ():
        value = normalize_email(item.get("value") if isinstance(item, dict) else item)
        if value:
            out.add(("email", value))
    inn_value = normalize_inn(inn)
    if inn_value:
        out.add(("inn", inn_value))
    return out


def record_keys(record: Any) -> set[tuple[str, str]]:
    return keys_of(phones=getattr(record, "phones", None) or (),
                   emails=getattr(record, "emails", None) or (),
                   inn=getattr(record, "inn", None))


def refresh_keys(session: Session, entity: str, record: Any, *, new: bool = False) -> None:
    """Make the key rows of ``record`` match its channels (``new``: it has none yet)."""
    if entity not in KEYED_ENTITIES:
        return
    wanted = record_keys(record)
    have: set[tuple[str, str]] = set()
    if not new:
        have = {(k, v) for k, v in session.execute(
            select(DedupKey.kind, DedupKey.value).where(
                DedupKey.entity_type == entity, DedupKey.entity_id == record.id))}
    gone = have - wanted
    if gone:
        for kind, value in gone:
            session.execute(delete(DedupKey).where(
                DedupKey.entity_type == entity, DedupKey.entity_id == record.id,
                DedupKey.kind == kind, DedupKey.value == value))
    added = wanted - have
    if added:
        session.execute(DedupKey.__table__.insert(), [
            {"entity_type": entity, "entity_id": record.id, "kind": k, "value": v}
            for k, v in sorted(added)])


def drop_keys(session: Session, entity: str, record_id: int) -> None:
    if entity in KEYED_ENTITIES:
        session.execute(delete(DedupKey).where(DedupKey.entity_type == entity,
                                               DedupKey.entity_id == record_id))


def matching_ids(session: Session, entity: str, keys: set[tuple[str, str]], *,
                 exclude: int | None = None) -> dict[int, set[str]]:
    """Records of ``entity`` sharing any of ``keys`` → the kinds they share (no rights
    applied: callers filter by what the actor may read)."""
    if not keys or entity not in KEYED_ENTITIES:
        return {}
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    out: dict[int, set[str]] = {}
    for kind, values in by_kind.items():
        for entity_id, found_kind in session.execute(
                select(DedupKey.entity_id, DedupKey.kind).where(
                    DedupKey.entity_type == entity, DedupKey.kind == kind,
                    DedupKey.value.in_(values))):
            if entity_id != exclude:
                out.setdefault(entity_id, set()).add(found_kind)
    return out
