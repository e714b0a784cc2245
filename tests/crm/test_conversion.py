"""Lead conversion: what is carried over, what is created, the links, rights, and previews."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead, Pipeline, Stage
from crm_models.errors import NotFound, PermissionDenied, ValidationFailed
from crm_models.org import PermLevel
from crm_models.permissions import actor_for
from crm_models.services import (
    conversion_preview,
    convert_lead,
    delete_deal,
    delete_lead,
    records,
    update_lead,
)
from crm_models.services.org import grant_role, save_role
from tests.factories import SYSTEM, Org, make_company, make_lead, make_user

PHONES = [{"value": "+7 916 555-01-02", "value_type": "MOBILE"},
          {"value": "+7 495 123-45-67", "value_type": "WORK"}]
EMAILS = [{"value": "ivan@vector.example", "value_type": "WORK"},
          {"value": "ivan@home.example", "value_type": "HOME"}]


def full_lead(db: Session, org: Org, **kw: Any) -> Lead:
    fields: dict[str, Any] = dict(
        title="Поставка станков", first_name="Иван", last_name="Петров",
        company_title="ООО «Вектор»", phones=PHONES, emails=EMAILS, amount="1500000.50",
        currency="usd", source="TRADE_SHOW", opened=False, comments="Позвонить после 15:00")
    fields.update(kw)
    return make_lead(db, org.m1, **fields)


def counts(db: Session) -> dict[str, int]:
    return {m.__name__: db.scalar(select(func.count()).select_from(m)) or 0
            for m in (Company, Contact, Deal, OutboxEvent, AuditEvent)}


def test_conversion_carries_every_field_and_links_both_ways(db: Session, org: Org) -> None:
    lead = full_lead(db, org)
    conv = convert_lead(db, actor_for(db, org.m1), lead.id)
    db.commit()
    db.expire_all()
    lead = db.get(Lead, lead.id)
    contact, company, deal = (db.get(Contact, conv.contact.id), db.get(Company, conv.company.id),
                              db.get(Deal, conv.deal.id))

    assert (contact.first_name, contact.last_name) == ("Иван", "Петров")
    assert contact.phones == PHONES and contact.emails == EMAILS
    assert (contact.responsible_id, contact.opened) == (org.m1.id, False)

    assert company.title == "ООО «Вектор»"
    assert (company.responsible_id, company.opened) == (org.m1.id, False)
    assert company.phones == [] and company.emails == []  # the person carries them

    assert deal.title == "Поставка станков"
    assert deal.amount == Decimal("1500000.50")
    assert (deal.currency, deal.source) == ("USD", "TRADE_SHOW")
    assert (deal.responsible_id, deal.opened) == (org.m1.id, False)
    assert deal.comments == "Позвонить после 15:00"
    assert (deal.pipeline_id, deal.stage.code) == (0, "NEW")

    # Links, both ways.
    assert lead.status == "CONVERTED"
    assert (lead.contact_id, lead.company_id, lead.deal_id) == (contact.id, company.id, deal.id)
    assert contact.lead_id == company.lead_id == deal.lead_id == lead.id
    assert [c.id for c in deal.contacts] == [contact.id]
    assert deal.company_id == company.id
    assert contact.company_id == company.id
    assert {rec.created_by_id for rec in (contact, company, deal)} == {org.m1.id}


def test_company_only_when_titled_and_not_linked(db: Session, org: Org) -> None:
    m1 = actor_for(db, org.m1)
    no_company = convert_lead(db, m1, full_lead(db, org, company_title="").id)
    assert no_company.company is None
    assert no_company.deal.company_id is None and no_company.contact.company_id is None

    existing = make_company(db, org.m1, title="Existing")
    lead = full_lead(db, org, company_title="Ignored, the lead has a company")
    records.update(db, SYSTEM, "lead", lead.id, {"company_id": existing.id}, allow_readonly=True)
    before = counts(db)["Company"]
    linked = convert_lead(db, m1, lead.id)
    assert counts(db)["Company"] == before
    assert linked.company.id == existing.id
    assert linked.deal.company_id == existing.id and linked.contact.company_id == existing.id
    assert linked.lead.company_id == existing.id


def test_lead_without_a_person_gives_the_company_its_channels(db: Session, org: Org) -> None:
    lead = full_lead(db, org, first_name="", last_name="")
    conv = convert_lead(db, actor_for(db, org.m1), lead.id)
    assert conv.contact is None
    assert conv.company.phones == PHONES and conv.company.emails == EMAILS
    assert conv.deal.contacts == []
    assert conv.lead.contact_id is None


def test_lead_with_nothing_but_a_title_gives_only_a_deal(db: Session, org: Org) -> None:
    lead = make_lead(db, org.m1, title="Bare")
    before = counts(db)
    conv = convert_lead(db, actor_for(db, org.m1), lead.id)
    assert (conv.contact, conv.company) == (None, None)
    assert conv.deal.amount is None and conv.deal.currency == "RUB"
    after = counts(db)
    assert (after["Deal"] - before["Deal"], after["Contact"], after["Company"]) == (
        1, before["Contact"], before["Company"])


def test_cannot_convert_twice_or_junk(db: Session, org: Org) -> None:
    m1 = actor_for(db, org.m1)
    lead = full_lead(db, org)
    convert_lead(db, m1, lead.id)
    with pytest.raises(ValidationFailed) as info:
        convert_lead(db, m1, lead.id)
    assert "status" in info.value.fields
    with pytest.raises(ValidationFailed):
        conversion_preview(db, m1, lead.id)

    junk = full_lead(db, org, status="JUNK")
    with pytest.raises(ValidationFailed) as info:
        convert_lead(db, m1, junk.id)
    assert "status" in info.value.fields
    # CONVERTED is reached only by converting.
    other = full_lead(db, org)
    with pytest.raises(ValidationFailed):
        update_lead(db, m1, other.id, status="CONVERTED")


def test_conversion_rights(db: Session, org: Org) -> None:
    m1_lead = full_lead(db, org)
    open_lead = full_lead(db, org, opened=True)
    db.commit()
    before = counts(db)
    with pytest.raises(NotFound):  # a manager cannot even see another manager's lead
        convert_lead(db, actor_for(db, org.m2), m1_lead.id)
    with pytest.raises(PermissionDenied):  # reads the open lead, may change nothing
        convert_lead(db, actor_for(db, org.observer), open_lead.id)
    with pytest.raises(NotFound):
        conversion_preview(db, actor_for(db, org.m2), m1_lead.id)
    with pytest.raises(PermissionDenied):
        conversion_preview(db, actor_for(db, org.observer), open_lead.id)
    assert counts(db) == before
    # The head of Sales converts a subordinate's lead; the records stay the subordinate's.
    conv = convert_lead(db, actor_for(db, org.head), m1_lead.id)
    assert conv.deal.responsible_id == org.m1.id
    assert conv.deal.created_by_id == org.head.id


def test_lead_rights_without_deal_rights_convert_nothing(db: Session, org: Org) -> None:
    lead_only = save_role(db, SYSTEM, name="Leads only",
                          levels={("lead", "read"): PermLevel.ALL,
                                  ("lead", "update"): PermLevel.ALL,
                                  ("contact", "add"): PermLevel.ALL,
                                  ("company", "add"): PermLevel.ALL})
    user = make_user(db, role_code=None)
    grant_role(db, SYSTEM, lead_only.id, user_id=user.id)
    lead = full_lead(db, org)
    db.commit()
    actor = actor_for(db, user)
    before = counts(db)
    with pytest.raises(PermissionDenied):
        conversion_preview(db, actor, lead.id)
    with pytest.raises(PermissionDenied):
        convert_lead(db, actor, lead.id)
    db.commit()  # the caller goes on; the company and contact made before must be gone
    assert counts(db) == before
    db.expire_all()
    assert db.get(Lead, lead.id).status == "NEW"


def second_pipeline(db: Session) -> Pipeline:
    pipeline = Pipeline(id=7, name="Tenders", sort=20)
    pipeline.stages = [Stage(code="C7:NEW", name="New", sort=10),
                       Stage(code="C7:BID", name="Bid", sort=20),
                       Stage(code="C7:WON", name="Won", sort=30, semantics="won")]
    db.add(pipeline)
    db.flush()
    return pipeline


def test_deal_overrides(db: Session, org: Org) -> None:
    second_pipeline(db)
    m1 = actor_for(db, org.m1)
    conv = convert_lead(db, m1, full_lead(db, org).id,
                        deal={"pipeline_id": 7, "stage": "C7:BID", "title": "Tender 42"})
    assert (conv.deal.pipeline_id, conv.deal.stage.code, conv.deal.title) == (7, "C7:BID",
                                                                             "Tender 42")
    first = convert_lead(db, m1, full_lead(db, org).id, deal={"pipeline_id": 7})
    assert first.deal.stage.code == "C7:NEW"
    # A stage of another pipeline, an unknown pipeline, a bad field: refused, nothing made.
    for bad, field in (({"pipeline_id": 7, "stage": "WON"}, "stage"),
                       ({"pipeline_id": 99}, "pipeline_id"),
                       ({"amount": "lots"}, "amount"),
                       ({"lead_id": 1}, "lead_id")):
        lead = full_lead(db, org)
        db.commit()
        before = counts(db)
        with pytest.raises(ValidationFailed) as info:
            convert_lead(db, m1, lead.id, deal=bad)
        assert field in info.value.fields
        db.commit()
        assert counts(db) == before
    with pytest.raises(ValidationFailed):
        convert_lead(db, m1, lead.id, deal=["not", "a", "dict"])  # type: ignore[arg-type]


def test_preview_matches_the_conversion_and_writes_nothing(db: Session, org: Org) -> None:
    lead = full_lead(db, org)
    db.commit()
    m1 = actor_for(db, org.m1)
    before = counts(db)
    preview = conversion_preview(db, m1, lead.id)
    db.commit()
    assert counts(db) == before
    assert preview["contact"]["first_name"] == "Иван"
    assert preview["contact"]["phones"] == PHONES
    assert preview["company"]["title"] == "ООО «Вектор»"
    assert preview["existing_company_id"] is None
    assert preview["deal"]["amount"] == "1500000.50"
    assert preview["deal"]["currency"] == "USD"
    conv = convert_lead(db, m1, lead.id)
    assert conv.deal.title == preview["deal"]["title"]
    assert conv.contact.emails == preview["contact"]["emails"]


def test_deleting_converted_records_unlinks_both_ways(db: Session, org: Org) -> None:
    m1 = actor_for(db, org.m1)
    conv = convert_lead(db, m1, full_lead(db, org).id)
    lead_id, deal_id = conv.lead.id, conv.deal.id
    contact_id, company_id = conv.contact.id, conv.company.id
    db.commit()
    delete_deal(db, m1, deal_id)  # lead.deal_id pointed at it
    assert conv.lead.deal_id is None  # the object in hand is right at once…
    db.commit()
    db.expire_all()
    assert db.get(Lead, lead_id).deal_id is None  # …and so is the row
    assert db.get(Lead, lead_id).status == "CONVERTED"
    delete_lead(db, m1, lead_id)  # contact.lead_id and company.lead_id pointed at it
    assert conv.contact.lead_id is None and conv.company.lead_id is None
    db.commit()
    db.expire_all()
    assert db.get(Contact, contact_id).lead_id is None
    assert db.get(Company, company_id).lead_id is None
    assert db.get(Contact, contact_id).company_id == company_id
    unlinked = sorted((a.entity_type, tuple(a.changes)) for a in db.scalars(
        select(AuditEvent).where(AuditEvent.action == "unlinked")))
    assert unlinked == [("company", ("lead_id",)), ("contact", ("lead_id",)),
                        ("lead", ("deal_id",))]


def test_deleting_the_lead_first_keeps_the_deal(db: Session, org: Org) -> None:
    m1 = actor_for(db, org.m1)
    conv = convert_lead(db, m1, full_lead(db, org).id)
    deal_id = conv.deal.id
    delete_lead(db, m1, conv.lead.id)
    db.commit()
    db.expire_all()
    deal = db.get(Deal, deal_id)
    assert deal.lead_id is None
    assert [c.id for c in deal.contacts] == [conv.contact.id]
