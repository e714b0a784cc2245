"""The product catalog: a tree of sections and the products in it.

A product is shared reference data, not a record someone is responsible for: its rights are
the matrix's "product" row taken as a whole (any level above "none" allows the action).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, Money, UTCDateTime, utcnow

#: VAT rates a product may carry; "none" is "без НДС" (not the same as 0 %).
VAT_RATES = ("20", "10", "0", "none")
#: Units of measure (code → Russian and English label), after the common OKEI ones.
UNITS: dict[str, tuple[str, str]] = {
    "pcs": ("шт.", "pcs"),
    "kg": ("кг", "kg"),
    "g": ("г", "g"),
    "t": ("т", "t"),
    "m": ("м", "m"),
    "m2": ("м²", "m²"),
    "m3": ("м³", "m³"),
    "l": ("л", "l"),
    "hour": ("час", "hour"),
    "day": ("дн.", "day"),
    "month": ("мес.", "month"),
    "service": ("услуга", "service"),
    "pack": ("упак.", "pack"),
    "set": ("компл.", "set"),
    "license": ("лиц.", "licence"),
}


def unit_label(code: str, locale: str = "ru") -> str:
    ru, en = UNITS.get(code, (code, code))
    return en if locale == "en" else ru


class ProductSection(Base):
    __tablename__ = "product_section"
    entity_type = "product_section"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_section.id", ondelete="RESTRICT"), index=True)
    sort: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[ProductSection | None] = relationship(remote_side=[id])


class Product(Base):
    __tablename__ = "product"
    # A deleted product's id must not come back: product rows and audit events name it.
    __table_args__ = {"sqlite_autoincrement": True}
    entity_type = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    sku: Mapped[str] = mapped_column(String(100), default="", index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    vat_rate: Mapped[str] = mapped_column(String(4), default="none")
    vat_included: Mapped[bool] = mapped_column(Boolean, default=True)
    unit: Mapped[str] = mapped_column(String(20), default="pcs")
    section_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_section.id", ondelete="RESTRICT"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(Integer, default=100)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    section: Mapped[ProductSection | None] = relationship()
