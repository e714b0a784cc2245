"""Product rows of deals and leads: sums, the amount that follows the rows unless set by hand,
field errors naming the row, rights, events."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.catalog import ProductRow
from crm_models.entities import Deal
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.services import catalog as cat
from crm_models.services import delete_deal, update_deal
from crm_models.services.product_rows import get_product_rows, row_sums, set_product_rows
from tests.factories import SYSTEM, actor, make_deal, make_lead


def _products(db):
    srv = cat.create_product(db, SYSTEM, name="Сервер", price="200000.00", vat_rate="20",
                             vat_included=True, unit="pcs")
    hours = cat.create_product(db, SYSTEM, name="Настройка", price="3000.00", vat_rate="none",
                               unit="hour")
    usd = cat.create_product(db, SYSTEM, name="Licence", price="100.00", currency="USD",
                             vat_rate="0")
    return srv, hours, usd


def test_sums_with_discounts_and_vat():
    def row(**kw):
        base = dict(price=Decimal("1000.00"), quantity=Decimal("3"), discount_type="percent",
                    discount=Decimal("0.00"), vat_rate="20", vat_included=True)
        return type("R", (), {**base, **kw})

    s = row_sums(row())
    assert (s.total, s.vat, s.net) == (Decimal("3000.00"), Decimal("500.00"), Decimal("2500.00"))
    s = row_sums(row(vat_included=False))
    assert (s.total, s.vat) == (Decimal("3600.00"), Decimal("600.00"))
    s = row_sums(row(discount=Decimal("10.00")))
    assert (s.price_after_discount, s.total) == (Decimal("900.00"), Decimal("2700.00"))
    s = row_sums(row(discount_type="amount", discount=Decimal("150.00"), vat_rate="10",
                     vat_included=False, quantity=Decimal("1.5")))
    assert (s.net, s.vat, s.total) == (Decimal("1275.00"), Decimal("127.50"), Decimal("1402.50"))
    s = row_sums(row(vat_rate="none"))
    assert (s.vat, s.total) == (Decimal("0.00"), Decimal("3000.00"))


def test_amount_follows_rows_unless_set_by_hand(db, org):
    srv, hours, _usd = _products(db)
    deal = make_deal(db, org.m1, amount="10.00")
    db.commit()
    m1 = actor(db, org.m1)
    rows = set_product_rows(db, m1, "deal", deal.id, [
        {"product_id": srv.id, "quantity": 2, "discount": "5"},
        {"product_id": hours.id, "quantity": "1.5"},
        {"name": "Доставка", "price": "1500", "quantity": 1},
    ])
    db.commit()
    assert [r.name for r in rows] == ["Сервер", "Настройка", "Доставка"]
    assert rows[0].price == Decimal("200000.00") and rows[0].vat_rate == "20"
    d = db.get(Deal, deal.id)
    assert d.amount == Decimal("386000.00") and d.amount_from_rows  # 380000 + 4500 + 1500
    events = list(db.scalars(select(OutboxEvent).where(OutboxEvent.entity_id == deal.id,
                                                       OutboxEvent.entity_type == "deal")
                             .order_by(OutboxEvent.id)))
    assert [e.event_type for e in events][-2:] == ["deal.product_rows_changed", "deal.updated"]
    assert events[-1].payload["changed"]["amount"] == ["10.00", "386000.00"]
    assert events[-2].payload["total"] == "386000.00"
    # a hand-typed amount wins, and later row changes leave it alone
    update_deal(db, m1, deal.id, amount="400000")
    db.commit()
    assert not db.get(Deal, deal.id).amount_from_rows
    set_product_rows(db, m1, "deal", deal.id, [{"product_id": hours.id, "quantity": 1}])
    db.commit()
    assert db.get(Deal, deal.id).amount == Decimal("400000.00")
    # and asking for it makes the amount follow again
    set_product_rows(db, m1, "deal", deal.id, [{"product_id": hours.id, "quantity": 1}],
                     amount_from_rows=True)
    db.commit()
    d = db.get(Deal, deal.id)
    assert (d.amount, d.amount_from_rows) == (Decimal("3000.00"), True)
    audit = db.scalars(select(AuditEvent).where(AuditEvent.entity_id == deal.id,
                                                AuditEvent.action == "product_rows_changed")
                       .order_by(AuditEvent.id)).first()
    assert audit.changes["product_rows"][1][0] == "Сервер × 2 = 380000.00"


def test_bad_rows_name_the_row_and_field(db, org):
    srv, _hours, usd = _products(db)
    deal = make_deal(db, org.m1)
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        set_product_rows(db, SYSTEM, "deal", deal.id, [
            {"product_id": srv.id, "quantity": "-1"},
            {"product_id": 99999, "quantity": 1},
            {"product_id": usd.id},
            {"name": "", "price": "10"},
            {"name": "Скидка", "price": "10", "discount": "120"},
            {"name": "X", "price": "10", "vat_rate": "18", "colour": 1},
        ])
    assert exc.value.fields == {
        "rows[0].quantity": "must be greater than zero",
        "rows[1].product_id": "no product with id 99999",
        "rows[2].product_id": "the product is priced in USD, the record in RUB",
        "rows[3].name": "is required",
        "rows[4].discount": "a percentage must be at most 100",
        "rows[5].vat_rate": "must be one of: 20, 10, 0, none",
        "rows[5].colour": "is not a field of a product row",
    }
    with pytest.raises(ValidationFailed) as exc:
        set_product_rows(db, SYSTEM, "deal", deal.id, {"name": "x"})
    assert set(exc.value.fields) == {"rows"}
    db.rollback()
    assert db.scalars(select(ProductRow)).first() is None


def test_rights_leads_and_deletion(db, org):
    _srv, hours, _usd = _products(db)
    deal = make_deal(db, org.m1)
    lead = make_lead(db, org.m1, amount="5")
    db.commit()
    with pytest.raises(NotFound):  # m2 may not even read m1's deal
        set_product_rows(db, actor(db, org.m2), "deal", deal.id, [])
    with pytest.raises(PermissionDenied):  # the observer reads it but may not change it
        set_product_rows(db, actor(db, org.observer), "deal", deal.id, [])
    db.rollback()
    set_product_rows(db, actor(db, org.m1), "lead", lead.id,
                     [{"product_id": hours.id, "quantity": 2}])
    set_product_rows(db, actor(db, org.m1), "deal", deal.id,
                     [{"product_id": hours.id, "quantity": 1}])
    db.commit()
    record, rows = get_product_rows(db, actor(db, org.m1), "lead", lead.id)
    assert record.amount == Decimal("6000.00") and [r.quantity for r in rows] == [Decimal(2)]
    with pytest.raises(NotFound):
        get_product_rows(db, actor(db, org.m1), "contact", 1)
    delete_deal(db, SYSTEM, deal.id)
    db.commit()
    assert [r.entity_type for r in db.scalars(select(ProductRow))] == ["lead"]
    cat.delete_product(db, SYSTEM, hours.id)  # the row stays, as free text
    db.commit()
    db.expire_all()
    [row] = db.scalars(select(ProductRow)).all()
    assert (row.product_id, row.name) == (None, "Настройка")


def test_lead_conversion_carries_the_rows_to_the_deal(db, org):
    from crm_models.services import convert_lead

    _srv, hours, _usd = _products(db)
    lead = make_lead(db, org.m1, company_title="ООО «Гранит»")
    set_product_rows(db, SYSTEM, "lead", lead.id, [{"product_id": hours.id, "quantity": 4}])
    conv = convert_lead(db, SYSTEM, lead.id)
    db.commit()
    _deal, rows = get_product_rows(db, SYSTEM, "deal", conv.deal.id)
    assert [(r.name, r.quantity, r.price) for r in rows] == [
        ("Настройка", Decimal(4), Decimal("3000.00"))]
    assert conv.deal.amount == Decimal("12000.00") and conv.deal.amount_from_rows
