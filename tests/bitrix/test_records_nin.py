"""``list_records`` NOT IN (``<field>__nin``), added for Bitrix24's ``!@`` filter prefix."""
from __future__ import annotations

import pytest

from crm_models.errors import ValidationFailed
from crm_models.services.records import list_records
from tests.factories import SYSTEM, make_company, make_deal


def test_not_in(app, org, db):
    acme = make_company(db, org.admin)
    other = make_company(db, org.admin)
    a = make_deal(db, org.admin, company_id=acme.id)
    b = make_deal(db, org.m1, company_id=other.id)
    c = make_deal(db, org.m2)
    db.commit()

    def ids(**filters):
        return sorted(d.id for d in list_records(db, SYSTEM, "deal", filters=filters).items)

    assert ids(id__nin=[a.id, c.id]) == [b.id]
    assert ids(id__nin=f"{a.id},{b.id}") == [c.id]
    assert ids(responsible_id__nin=[org.m1.id]) == [a.id, c.id]
    # a deal without a company is not in these companies
    assert ids(company_id__nin=[acme.id]) == [b.id, c.id]
    assert ids(stage__nin=["WON"]) == [a.id, b.id, c.id]
    with pytest.raises(ValidationFailed):
        ids(id__nin=[])
    with pytest.raises(ValidationFailed):
        ids(contact_ids__nin=[1])
