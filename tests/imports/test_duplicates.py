"""Duplicates: normalised keys, the card's check, conversion offering existing records, merge."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_models.activity import AuditEvent, Comment
from crm_models.dedup import DedupKey, normalize_email, normalize_inn, normalize_phone
from crm_models.entities import Company, Contact, Deal, Lead
from crm_models.errors import PermissionDenied, ValidationFailed
from crm_models.permissions import actor_for
from crm_models.services import add_comment, conversion_preview, convert_lead, update_contact
from crm_models.services.duplicates import candidates, duplicates_of, merge
from tests.factories import Org, make_company, make_contact, make_deal, make_lead


@pytest.mark.parametrize("raw, e164", [
    ("8 (999) 123-45-67", "+79991234567"), ("+7 999 123 45 67", "+79991234567"),
    ("79991234567", "+79991234567"), ("999-123-45-67", "+79991234567"),
    ("8 10 49 30 1234567", "+49301234567"), ("+49 30 1234567", "+49301234567"),
    ("12-34", None), ("", None),
])
def test_phones_normalise_to_e164_with_russian_habits(raw: str, e164: str | None) -> None:
    assert normalize_phone(raw) == e164


def test_emails_and_inn_normalise() -> None:
    assert normalize_email(" Ivan@Vector.EXAMPLE ") == "ivan@vector.example"
    assert normalize_email("no-at-sign") is None
    assert normalize_inn("7707 083 893") == "7707083893"
    assert normalize_inn("123") is None


def test_contacts_match_by_phone_email_and_card_check(db: Session, org: Org) -> None:
    a = make_contact(db, org.m1, first_name="Иван", phones=["8 (916) 555-01-02"])
    b = make_contact(db, org.m1, first_name="Иван П.", phones=["+7 916 555 01 02"],
                     emails=["IVAN@vector.example"])
    c = make_contact(db, org.m1, first_name="Ольга", emails=["ivan@Vector.example"])
    make_contact(db, org.m1, first_name="Другой", phones=["+7 916 555 01 03"])
    db.commit()
    actor = actor_for(db, org.m1)
    found = {d.record.id: d.kinds for d in duplicates_of(db, actor, "contact", b.id)}
    assert found == {a.id: {"phone"}, c.id: {"email"}}
    # Keys follow an edit: a's phone changes, it is no longer b's duplicate.
    update_contact(db, actor, a.id, phones=["+7 495 000 00 00"])
    db.commit()
    assert {d.record.id for d in duplicates_of(db, actor, "contact", b.id)} == {c.id}
    # Rights: only records the actor may read are told (an outsider reads none of these).
    assert candidates(db, actor_for(db, org.outsider), "contact",
                      phones=["+7 916 555 01 02"]) == []


def test_company_matches_by_inn(db: Session, org: Org) -> None:
    a = make_company(db, org.m1, title="Вектор", inn="7707083893")
    make_company(db, org.m1, title="Другое")
    db.commit()
    found = candidates(db, actor_for(db, org.m1), "company", inn="7707 083 893")
    assert [d.record.id for d in found] == [a.id] and found[0].kinds == {"inn"}
    with pytest.raises(ValidationFailed) as exc:
        make_company(db, org.m1, title="Плохой ИНН", inn="12345")
    assert "inn" in exc.value.fields


def test_conversion_offers_and_uses_the_existing_company_and_contact(db: Session,
                                                                     org: Org) -> None:
    company = make_company(db, org.m1, title="ООО «Вектор»")
    contact = make_contact(db, org.m1, first_name="Иван", phones=["+7 916 555-01-02"])
    lead = make_lead(db, org.m1, title="Станки", first_name="Иван", last_name="Петров",
                     company_title="ооо «вектор»", phones=["8 916 555 01 02"])
    db.commit()
    actor = actor_for(db, org.m1)
    preview = conversion_preview(db, actor, lead.id)
    assert [m["id"] for m in preview["matches"]["company"]] == [company.id]
    assert preview["matches"]["contact"] == [
        {"id": contact.id, "title": contact.full_name, "by": ["phone"]}]
    before = db.scalar(select(func.count()).select_from(Company))
    conv = convert_lead(db, actor, lead.id, company_id=company.id, contact_id=contact.id)
    db.commit()
    assert db.scalar(select(func.count()).select_from(Company)) == before
    assert db.scalar(select(func.count()).select_from(Contact)) == 1
    assert conv.deal.company_id == company.id and [c.id for c in conv.deal.contacts] == [
        contact.id]
    assert db.get(Lead, lead.id).company_id == company.id


def test_conversion_refuses_an_unknown_existing_record(db: Session, org: Org) -> None:
    lead = make_lead(db, org.m1, title="Станки", company_title="Вектор")
    db.commit()
    with pytest.raises(ValidationFailed) as exc:
        convert_lead(db, actor_for(db, org.m1), lead.id, company_id=999999)
    assert exc.value.fields == {"company_id": "no company with id 999999"}


def test_merge_moves_links_timeline_and_says_who_merged(db: Session, org: Org) -> None:
    keep = make_contact(db, org.m1, first_name="Иван", last_name="Петров",
                        phones=["+7 916 555 01 02"])
    gone = make_contact(db, org.m1, first_name="Иван", last_name="Петров", position="Директор",
                        phones=["8 916 555 01 02", "+7 495 111 22 33"],
                        emails=["ivan@vector.example"])
    deal = make_deal(db, org.m1, title="Станки", contact_ids=[gone.id])
    both = make_deal(db, org.m1, title="Оба", contact_ids=[keep.id, gone.id])
    lead = make_lead(db, org.m1, title="Лид")
    db.execute(Lead.__table__.update().where(Lead.id == lead.id).values(contact_id=gone.id))
    admin = actor_for(db, org.admin)
    add_comment(db, admin, entity_type="contact", entity_id=gone.id, text="Звонил вчера")
    db.commit()
    with pytest.raises(PermissionDenied):
        merge(db, actor_for(db, org.m1), "contact", keep.id, gone.id)
    db.rollback()
    merge(db, admin, "contact", keep.id, gone.id)
    db.commit()
    db.expire_all()
    assert db.get(Contact, gone.id) is None
    kept = db.get(Contact, keep.id)
    assert kept.position == "Директор"  # an empty field filled from the merged record
    assert [p["value"] for p in kept.phones] == ["+7 916 555 01 02", "+7 495 111 22 33"]
    assert [c.id for c in db.get(Deal, deal.id).contacts] == [keep.id]
    assert [c.id for c in db.get(Deal, both.id).contacts] == [keep.id]
    assert db.get(Lead, lead.id).contact_id == keep.id
    assert db.scalar(select(Comment.entity_id).where(Comment.text == "Звонил вчера")) == keep.id
    merged = db.scalars(select(AuditEvent).where(AuditEvent.action == "merged")).one()
    assert (merged.entity_id, merged.actor_user_id) == (keep.id, org.admin.id)
    assert merged.changes == {"merged_id": [gone.id, keep.id]}
    assert set(db.scalars(select(DedupKey.entity_id).where(
        DedupKey.entity_type == "contact"))) == {keep.id}
    with pytest.raises(ValidationFailed):
        merge(db, admin, "contact", keep.id, keep.id)


def test_duplicates_page_and_merge_over_http(app, db: Session, org: Org, auth, client) -> None:
    a = make_company(db, org.admin, title="Вектор", inn="7707083893")
    b = make_company(db, org.admin, title="Вектор (дубль)", inn="7707083893")
    db.commit()
    a_id, b_id = a.id, b.id
    auth.login("admin@test.local")
    page = client.get(f"/companies/{a.id}/duplicates")
    assert page.status_code == 200 and "Вектор (дубль)" in page.get_data(as_text=True)
    card = client.get(f"/companies/{a.id}").get_data(as_text=True)
    assert f"/companies/{a.id}/duplicates" in card
    token = auth.csrf_token(f"/companies/{a.id}/duplicates")
    resp = client.post(f"/companies/{a.id}/merge", data={"other_id": b.id, "csrf_token": token})
    assert resp.status_code == 302 and resp.location.endswith(f"/companies/{a.id}")
    db.rollback()
    assert db.get(Company, b_id) is None
    assert client.post(f"/companies/{a_id}/merge",
                       data={"other_id": "x", "csrf_token": token}).status_code == 400
