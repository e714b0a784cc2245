"""A deleted record's id is never handed to a new record (its timeline is keyed by id)."""
from __future__ import annotations

from crm_models.services import delete_deal

from ..factories import SYSTEM, make_deal


def test_new_deal_does_not_reuse_a_deleted_deals_id(db, org):
    first = make_deal(db, org.m1)
    last = make_deal(db, org.m1)
    db.commit()
    delete_deal(db, SYSTEM, last.id)
    db.commit()
    again = make_deal(db, org.m1)
    db.commit()
    assert again.id > last.id > first.id
