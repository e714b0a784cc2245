"""An invoice as a PDF: HTML from a Jinja template (Russian or English layout), rendered by
WeasyPrint. The fonts come from the system (Debian's fonts-dejavu-core carries Cyrillic)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import render_template

from crm_models.catalog import unit_label
from crm_models.invoices import Invoice
from crm_models.money_words import amount_in_words, amount_in_words_en
from crm_models.services.product_rows import row_dict

MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
             "сентября", "октября", "ноября", "декабря")
CURRENCY_RU = {"RUB": "руб.", "USD": "долл. США", "EUR": "евро"}
VAT_RU = {"20": "20%", "10": "10%", "0": "0%", "none": "Без НДС"}
VAT_EN = {"20": "20%", "10": "10%", "0": "0%", "none": "No VAT"}
LAYOUTS = ("ru", "en")
SCHEME = "marshrut-image:"  # the PDF's pictures: <img src="marshrut-image:logo"> …


def date_ru(day: dt.date) -> str:
    """«6 декабря 2026 г.»"""
    return f"{day.day} {MONTHS_RU[day.month - 1]} {day.year} г."


def num_ru(value: Any) -> str:
    """``123 456,78`` (a thin gap between thousands, a decimal comma)."""
    text = f"{Decimal(str(value)):,.2f}"
    return text.replace(",", "\u00a0").replace(".", ",")


def invoice_html(inv: Invoice, rows: list[Any], layout: str = "ru",
                 images: dict[str, Any] | None = None) -> str:
    """``images``: kind (logo, signature, stamp) → stored picture, drawn where it belongs."""
    data = [row_dict(r) for r in rows]
    pics = {kind: f"{SCHEME}{kind}" for kind in images or {}}
    if layout == "en":
        return render_template("invoices/pdf_en.html", inv=inv, rows=data, pics=pics,
                               words=amount_in_words_en(inv.total, inv.currency),
                               unit_en=lambda c: unit_label(c, "en"),
                               vat_en=VAT_EN.get)
    return render_template("invoices/pdf_ru.html", inv=inv, rows=data, pics=pics,
                           words=amount_in_words(inv.total, inv.currency), date_ru=date_ru,
                           num=num_ru, unit_ru=lambda c: unit_label(c, "ru"),
                           vat_ru=VAT_RU.get,
                           currency_ru=CURRENCY_RU.get(inv.currency, inv.currency))


def invoice_pdf(inv: Invoice, rows: list[Any], layout: str = "ru",
                images: dict[str, Any] | None = None) -> bytes:
    """The PDF bytes. WeasyPrint is imported here: it loads native libraries (pango), which
    only the PDF needs."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    pictures = images or {}
    html = invoice_html(inv, rows, layout, pictures)

    class OwnPictures(URLFetcher):  # type: ignore[misc]
        """No base URL and no fetching: the only things loaded are our own pictures, by name
        from ``images`` — nothing from anywhere else (least of all the network)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            kind = url[len(SCHEME):] if url.startswith(SCHEME) else ""
            if kind not in pictures:
                raise ValueError(f"an invoice PDF loads nothing ({url[:60]})")
            return URLFetcherResponse(url, pictures[kind].data,
                                      {"Content-Type": pictures[kind].content_type})

    return HTML(string=html, url_fetcher=OwnPictures()).write_pdf()
