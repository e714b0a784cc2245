"""The demo data's catalog: products with different VAT rates, rows adding up to the demo
deals' amounts, our requisites and one invoice for ООО «Вектор»."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_models.catalog import Product
from crm_models.demo import load_demo
from crm_models.entities import Deal
from crm_models.invoices import Invoice
from crm_models.services.product_rows import rows_of, totals


def test_demo_catalog_rows_and_invoice(app, db):
    assert load_demo(db)
    db.commit()
    products = list(db.scalars(select(Product)))
    assert len(products) == 6 and {p.vat_rate for p in products} == {"20", "none"}
    for deal in db.scalars(select(Deal)):
        rows = rows_of(db, "deal", deal.id)
        if rows:
            assert deal.amount_from_rows and totals(rows)[0] == deal.amount, deal.title
    [inv] = db.scalars(select(Invoice)).all()
    assert (inv.buyer_name, inv.total, inv.number) == ("ООО «Вектор»", Decimal("2500000.00"),
                                                       "1")
    assert inv.seller["inn"] == "7707083893" and inv.buyer_inn == "7725123456"
