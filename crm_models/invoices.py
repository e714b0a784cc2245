"""Invoices: made from a deal (its product rows, its buyer), numbered per year without gaps,
moving draft → sent → paid / overdue / cancelled; and our own requisites, the seller."""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, Money, UTCDateTime, utcnow


class InvoiceStage(enum.StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


#: Stage → the stages it may move to.
STAGE_MOVES: dict[str, tuple[str, ...]] = {
    "draft": ("sent", "cancelled"),
    "sent": ("paid", "overdue", "cancelled"),
    "overdue": ("paid", "cancelled"),
    "paid": (),
    "cancelled": (),
}

#: Our requisites: field → (English label, Russian label).
REQUISITES: dict[str, tuple[str, str]] = {
    "name": ("Company name", "Наименование"),
    "inn": ("INN (taxpayer number)", "ИНН"),
    "kpp": ("KPP", "КПП"),
    "ogrn": ("OGRN", "ОГРН"),
    "address": ("Address", "Адрес"),
    "bank": ("Bank", "Банк"),
    "bik": ("BIK", "БИК"),
    "corr_account": ("Correspondent account", "Корр. счёт"),
    "account": ("Settlement account", "Расчётный счёт"),
    "director": ("Director", "Руководитель"),
    "accountant": ("Chief accountant", "Главный бухгалтер"),
    "invoice_prefix": ("Invoice number prefix", "Префикс номера счёта"),
}


#: Our pictures on invoices: kind → (English label, Russian label).
IMAGE_KINDS: dict[str, tuple[str, str]] = {
    "logo": ("Logo", "Логотип"), "signature": ("Director's signature", "Подпись руководителя"),
    "stamp": ("Stamp", "Печать"),
}


class OurCompany(Base):
    """The seller on our invoices: one row (id 1), edited on the requisites settings page."""

    __tablename__ = "our_company"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), default="")
    inn: Mapped[str] = mapped_column(String(12), default="")
    kpp: Mapped[str] = mapped_column(String(9), default="")
    ogrn: Mapped[str] = mapped_column(String(15), default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    bank: Mapped[str] = mapped_column(String(255), default="")
    bik: Mapped[str] = mapped_column(String(9), default="")
    corr_account: Mapped[str] = mapped_column(String(20), default="")
    account: Mapped[str] = mapped_column(String(20), default="")
    director: Mapped[str] = mapped_column(String(255), default="")
    accountant: Mapped[str] = mapped_column(String(255), default="")
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="")
    logo_id: Mapped[int | None] = mapped_column(ForeignKey("stored_image.id",
                                                           ondelete="SET NULL"))
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("stored_image.id",
                                                                ondelete="SET NULL"))
    stamp_id: Mapped[int | None] = mapped_column(ForeignKey("stored_image.id",
                                                            ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def requisites(self) -> dict[str, str]:
        return {k: getattr(self, k) or "" for k in REQUISITES}

    def snapshot(self) -> dict[str, Any]:
        """The requisites and the ids of the pictures, as an invoice keeps them."""
        return {**self.requisites(), **{f"{k}_id": getattr(self, f"{k}_id")
                                        for k in IMAGE_KINDS}}


class InvoiceCounter(Base):
    """The last invoice number given in a year; its row is locked while a number is taken."""

    __tablename__ = "invoice_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("year", "seq"), {"sqlite_autoincrement": True})
    entity_type = "invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40), index=True)
    stage: Mapped[str] = mapped_column(String(20), default=InvoiceStage.DRAFT.value, index=True)
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    vat: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id", ondelete="SET NULL"),
                                                index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id",
                                                              ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id",
                                                              ondelete="SET NULL"))
    buyer_name: Mapped[str] = mapped_column(String(255), default="")
    buyer_inn: Mapped[str] = mapped_column(String(12), default="")
    buyer_kpp: Mapped[str] = mapped_column(String(9), default="")
    buyer_address: Mapped[str] = mapped_column(String(500), default="")
    #: Our requisites as they were when the invoice was made (later edits do not change it).
    seller: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comments: Mapped[str] = mapped_column(Text, default="")
    responsible_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    opened: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
