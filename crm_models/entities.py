"""CRM entities: companies, contacts, leads, deals, and the pipelines deals move through."""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, Money, UTCDateTime, utcnow
from .org import User


class LeadStatus(enum.StrEnum):
    NEW = "NEW"
    IN_PROCESS = "IN_PROCESS"
    PROCESSED = "PROCESSED"
    JUNK = "JUNK"
    CONVERTED = "CONVERTED"


class StageSemantics(enum.StrEnum):
    PROCESS = "process"
    WON = "won"
    LOST = "lost"


#: Bitrix24's standard source ids.
SOURCES = (
    "CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "TRADE_SHOW", "WEBFORM",
    "OTHER",
)
PHONE_TYPES = ("WORK", "MOBILE", "HOME", "FAX", "OTHER")
EMAIL_TYPES = ("WORK", "HOME", "OTHER")


class CrmRecord:
    """Columns every CRM entity has: who is responsible, whether it is open to all, who made it."""

    # SQLite would otherwise hand a deleted record's id to the next one, and with it the old
    # record's timeline (audit events, comments, process history are keyed by id).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    opened: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    comments: Mapped[str] = mapped_column(Text, default="")
    # Case-folded names, numbers and addresses, kept by the service layer: portable search
    # (SQLite's lower() knows only ASCII, so Cyrillic needs this).
    search_text: Mapped[str] = mapped_column(Text, default="")


    responsible_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="RESTRICT"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )


class WithContacts:
    phones: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    emails: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class Company(CrmRecord, WithContacts, Base):
    __tablename__ = "company"
    entity_type = "company"

    title: Mapped[str] = mapped_column(String(255), index=True)
    industry: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    #: ИНН: 10 digits (an organisation) or 12 (an entrepreneur); a duplicate key.
    inn: Mapped[str] = mapped_column(String(12), default="", server_default="")
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL",
                                                           use_alter=True))

    responsible: Mapped[User] = relationship(foreign_keys="Company.responsible_id")


class Contact(CrmRecord, WithContacts, Base):
    __tablename__ = "contact"
    entity_type = "contact"

    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[str] = mapped_column(String(200), default="")
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="SET NULL"),
                                                   index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL",
                                                           use_alter=True))

    company: Mapped[Company | None] = relationship()
    responsible: Mapped[User] = relationship(foreign_keys="Contact.responsible_id")

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def title(self) -> str:
        return self.full_name


class Lead(CrmRecord, WithContacts, Base):
    __tablename__ = "lead"
    entity_type = "lead"

    title: Mapped[str] = mapped_column(String(255), index=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    company_title: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.NEW.value, index=True)
    source: Mapped[str] = mapped_column(String(30), default="")
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    #: Whether ``amount`` is the total of the product rows (kept so by the rows service) or
    #: was set by hand; not a field of the schema: the rows service and a hand edit set it.
    amount_from_rows: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id", ondelete="SET NULL",
                                                           use_alter=True))

    responsible: Mapped[User] = relationship(foreign_keys="Lead.responsible_id")
    company: Mapped[Company | None] = relationship(foreign_keys=[company_id])
    contact: Mapped[Contact | None] = relationship(foreign_keys=[contact_id])


class Pipeline(Base):
    """A deal category (Bitrix24's CATEGORY_ID); pipeline 0 is the default one."""

    __tablename__ = "pipeline"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    sort: Mapped[int] = mapped_column(Integer, default=100)

    stages: Mapped[list[Stage]] = relationship(
        back_populates="pipeline", order_by="Stage.sort", cascade="all, delete-orphan"
    )


class Stage(Base):
    __tablename__ = "stage"

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(50), unique=True)  # NEW, WON, C1:NEW, …
    name: Mapped[str] = mapped_column(String(200))
    sort: Mapped[int] = mapped_column(Integer, default=100)
    semantics: Mapped[str] = mapped_column(String(10), default=StageSemantics.PROCESS.value)
    color: Mapped[str] = mapped_column(String(7), default="#39a8ef")

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


deal_contact = Table(
    "deal_contact",
    Base.metadata,
    Column("deal_id", ForeignKey("deal.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
)


class Deal(CrmRecord, Base):
    __tablename__ = "deal"
    # The lists a manager opens all day, read a page at a time from an index instead of
    # sorting every matching row: "deals of this person in this stage by date" (the list's
    # filters) and "everything by date". A kanban column (a stage, by id) reads
    # ix_deal_stage_id, which on SQLite is (stage_id, rowid).
    __table_args__ = (
        Index("ix_deal_responsible_stage_created", "responsible_id", "stage_id", "created_at",
              "id"),
        Index("ix_deal_created", "created_at", "id"),
        # A person's deals in a stage newest first (the kanban column and the list's default
        # order, -id): without it SQLite walks the stage's index and skips everyone else's.
        Index("ix_deal_responsible_stage", "responsible_id", "stage_id", "id"),
        # The kanban's column headers (count and sum per stage of a pipeline) read this index
        # alone, in stage order (crm_models.services.board).
        Index("ix_deal_pipeline_stage_totals", "pipeline_id", "stage_id", "currency", "amount"),
        CrmRecord.__table_args__,
    )
    entity_type = "deal"

    title: Mapped[str] = mapped_column(String(255), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipeline.id", ondelete="RESTRICT"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id", ondelete="RESTRICT"), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    amount_from_rows: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())  # see Lead
    probability: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(30), default="")
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="SET NULL"),
                                                   index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    close_date: Mapped[dt.date | None] = mapped_column(Date)

    stage: Mapped[Stage] = relationship()
    pipeline: Mapped[Pipeline] = relationship()
    company: Mapped[Company | None] = relationship()
    contacts: Mapped[list[Contact]] = relationship(secondary=deal_contact, order_by="Contact.id")
    responsible: Mapped[User] = relationship(foreign_keys="Deal.responsible_id")


ENTITY_MODELS: dict[str, type[Any]] = {
    "lead": Lead, "deal": Deal, "contact": Contact, "company": Company,
}
