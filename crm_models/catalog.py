"""The product catalog: a tree of sections and the products in it.

A product is shared reference data, not a record someone is responsible for: its rights are
the matrix's "product" row taken as a whole (any level above "none" allows the action).
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

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


QUANTITY_STEP = Decimal("0.001")


class Quantity(TypeDecorator[Decimal]):
    """A quantity with up to three decimals (1.5 kg, 0.25 hour), stored as integer
    thousandths so that it stays exact on SQLite as well."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return int((Decimal(value) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / 1000).quantize(QUANTITY_STEP)


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
    picture_id: Mapped[int | None] = mapped_column(
        ForeignKey("stored_image.id", ondelete="SET NULL"))
    search_text: Mapped[str] = mapped_column(Text, default="")
    #: the quantity in stock as the accounting system (1C offers.xml) last reported it;
    #: None: never reported
    stock: Mapped[Decimal | None] = mapped_column(Quantity, nullable=True)
    #: characteristics from 1C (Свойства / ЗначенияСвойств): property name → value
    properties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    section: Mapped[ProductSection | None] = relationship()


DISCOUNT_TYPES = ("percent", "amount")


class ProductRow(Base):
    """One line of a deal's or a lead's goods: a catalog product or free text.

    ``price`` is per unit before the discount; ``discount`` is a percentage or an amount per
    unit (``discount_type``); VAT is the row's own (copied from the product, changeable).
    The row's sums are computed (``crm_models.services.product_rows.row_sums``), not stored.
    """

    __tablename__ = "product_row"
    __table_args__ = (Index("ix_product_row_entity", "entity_type", "entity_id", "sort"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20))  # deal or lead
    entity_id: Mapped[int] = mapped_column(Integer)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("product.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(String(20), default="pcs")
    price: Mapped[Decimal] = mapped_column(Money)
    discount_type: Mapped[str] = mapped_column(String(10), default="percent")
    discount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    vat_rate: Mapped[str] = mapped_column(String(4), default="none")
    vat_included: Mapped[bool] = mapped_column(Boolean, default=True)
