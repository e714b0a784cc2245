"""Money: exact Decimal round trips (stored as integer kopecks), sorting and amount filters."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from crm_models.entities import Deal, Lead
from crm_models.errors import ValidationFailed
from crm_models.permissions import actor_for
from crm_models.serialize import to_dict
from crm_models.services import list_deals, list_leads
from tests.factories import Org, make_deal, make_lead


@pytest.mark.parametrize(("given", "decimal", "kopecks"), [
    ("0.01", "0.01", 1), ("0.1", "0.10", 10), ("1500", "1500.00", 150000),
    ("1500.5", "1500.50", 150050), (" 2 500,75 ", "2500.75", 250075), (0, "0.00", 0),
    (12.34, "12.34", 1234), (Decimal("0.30"), "0.30", 30),
    ("123456789012.34", "123456789012.34", 12345678901234),
    ("999999999999999.99", "999999999999999.99", 99999999999999999),
])
def test_amount_round_trip_is_exact(db: Session, org: Org, given: Any, decimal: str,
                                    kopecks: int) -> None:
    deal = make_deal(db, org.m1, amount=given)
    lead = make_lead(db, org.m1, amount=given)
    db.commit()
    stored = db.execute(text("SELECT amount FROM deal WHERE id = :id"), {"id": deal.id}).scalar()
    assert stored == kopecks and isinstance(stored, int)
    db.expire_all()
    for model, rid in ((Deal, deal.id), (Lead, lead.id)):
        amount = db.get(model, rid).amount
        assert isinstance(amount, Decimal)
        assert str(amount) == decimal
    assert to_dict(db.get(Deal, deal.id))["amount"] == decimal


def test_no_amount_is_null(db: Session, org: Org) -> None:
    deal = make_deal(db, org.m1)
    db.commit()
    db.expire_all()
    assert db.get(Deal, deal.id).amount is None
    assert to_dict(db.get(Deal, deal.id))["amount"] is None


@pytest.fixture()
def priced(db: Session, org: Org) -> dict[str, int]:
    amounts = {"ten": "10", "nine99": "9.99", "hundred": "100.00", "none": None,
               "cent": "0.01", "million": "1000000", "ten_again": "10.00"}
    ids = {name: make_deal(db, org.m1, amount=a).id for name, a in amounts.items()}
    db.commit()
    return ids


def test_sorting_by_amount(db: Session, org: Org, priced: dict[str, int]) -> None:
    m1 = actor_for(db, org.m1)
    inverse = {v: k for k, v in priced.items()}
    up = [inverse[d.id] for d in list_deals(db, m1, sort="amount").items]
    down = [inverse[d.id] for d in list_deals(db, m1, sort="-amount").items]
    # Equal amounts by id; deals without an amount come last either way, on both databases.
    assert up == ["cent", "nine99", "ten", "ten_again", "hundred", "million", "none"]
    assert down == ["million", "hundred", "ten_again", "ten", "nine99", "cent", "none"]
    # Paging keeps the order.
    pages = [inverse[d.id] for p in (1, 2, 3) for d in
             list_deals(db, m1, sort="amount", per_page=3, page=p).items]
    assert pages == up


@pytest.mark.parametrize(("filters", "expected"), [
    ({"amount__gt": "9.99"}, {"ten", "ten_again", "hundred", "million"}),
    ({"amount__gte": "9.99"}, {"nine99", "ten", "ten_again", "hundred", "million"}),
    ({"amount__gt": "10"}, {"hundred", "million"}),
    ({"amount__lt": "0.02"}, {"cent"}),
    ({"amount__lte": "10.00"}, {"cent", "nine99", "ten", "ten_again"}),
    ({"amount": "10.0"}, {"ten", "ten_again"}),
    ({"amount": 100}, {"hundred"}),
    ({"amount__ne": "10"}, {"nine99", "hundred", "cent", "million"}),
    ({"amount__in": "9.99,100"}, {"nine99", "hundred"}),
    ({"amount__in": ["0.01", Decimal("1000000.00")]}, {"cent", "million"}),
    ({"amount__gt": "999 999,99"}, {"million"}),
    ({"amount__gt": "9.99", "amount__lt": "100"}, {"ten", "ten_again"}),
    ({"amount": ""}, {"none"}),
])
def test_amount_filters(db: Session, org: Org, priced: dict[str, int],
                        filters: dict[str, Any], expected: set[str]) -> None:
    inverse = {v: k for k, v in priced.items()}
    found = {inverse[d.id] for d in list_deals(db, actor_for(db, org.m1), filters=filters).items}
    assert found == expected


@pytest.mark.parametrize("bad", ["9.999", "abc", "-1", "1e20", True, "NaN", [], {"gt": 1}])
def test_bad_amount_filter_names_the_key(db: Session, org: Org, bad: Any) -> None:
    with pytest.raises(ValidationFailed) as info:
        list_leads(db, actor_for(db, org.m1), filters={"amount__gt": bad})
    assert "amount__gt" in info.value.fields
