"""Record pickers on the forms (search within the read scope, inline creation) and the length
limits: the same in the schema, the database and the form, refused with the field named."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.activity import AuditEvent, OutboxEvent
from crm_models.entities import ENTITY_MODELS, Company, Contact
from crm_models.fields import SCHEMAS
from tests.factories import make_company, make_contact

from .pages_support import Browser, counts, field_error, fresh, text


def test_search_offers_only_records_the_user_may_read(app, db, org, client, auth):
    mine = make_company(db, org.m1, title="Вектор-Север")
    foreign = make_company(db, org.outsider, title="Вектор-Юг", opened=False)
    petrov = make_contact(db, org.m1, first_name="Пётр", last_name="Петров", company_id=mine.id)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/pickers/company?field=company_id&q=вектор"))
    assert f'name="company_id" value="{mine.id}"' in html and "Вектор-Север" in html
    assert "Вектор-Юг" not in html and str(foreign.id) not in re.findall(r'value="(\d+)"', html)
    assert "Создать компанию «вектор»" in html
    html = text(b.get(f"/pickers/contact?field=contact_ids&q=петр&contact_ids={petrov.id}"))
    assert f'value="{petrov.id}"' not in html  # already chosen: not offered twice
    html = text(b.get("/pickers/contact?field=contact_ids&q=петр"))
    assert f'type="checkbox" name="contact_ids" value="{petrov.id}"> Пётр Петров' in html
    assert "Вектор-Север" in html  # the contact's company tells namesakes apart
    assert "ничего не найдено" in text(b.get("/pickers/contact?field=contact_ids&q=zzz"))
    # A picker only fills its own field.
    assert b.get("/pickers/contact?field=company_id&q=x").status_code == 404
    assert b.get("/pickers/company?field=title").status_code == 404


def test_inline_creation_goes_through_the_services_and_comes_back_chosen(app, db, org, client,
                                                                         auth):
    b = Browser(client, auth).login(org.m1)
    r = b.post("/pickers/company/new?field=company_id", {"q": "ООО «Новая»"})
    assert r.status_code == 200
    company = fresh(db).scalars(select(Company).where(Company.title == "ООО «Новая»")).one()
    assert company.responsible_id == org.m1.id
    assert f'type="radio" name="company_id" value="{company.id}" checked> ООО «Новая»' in text(r)
    assert "Создано и выбрано" in text(r)
    assert db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "company",
                                               AuditEvent.entity_id == company.id)).first()
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "company.created",
                                                OutboxEvent.entity_id == company.id)).first()
    r = b.post("/pickers/contact/new?field=contact_ids", {"q": "Анна Смирнова"})
    contact = fresh(db).scalars(select(Contact).where(Contact.last_name == "Смирнова")).one()
    assert contact.first_name == "Анна"
    assert f'type="checkbox" name="contact_ids" value="{contact.id}" checked>' in text(r)
    # Then the deal is saved with both, as ticked in the form.
    r = b.post("/deals/new", {"title": "С новыми", "company_id": company.id,
                              "contact_ids": [contact.id], "responsible_id": org.m1.id})
    assert r.status_code == 302


def test_inline_creation_refused_is_said_and_writes_nothing(app, db, org, client, auth):
    b = Browser(client, auth).login(org.observer)
    before = counts(db)
    html = text(b.post("/pickers/company/new?field=company_id", {"q": "Чужая"}))
    assert "Недостаточно прав" in html or "Нет прав" in html or "запрещ" in html.lower(), html
    assert counts(db) == before
    auth.logout()
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    html = text(b.post("/pickers/company/new?field=company_id", {"q": "Щ" * 400}))
    assert 'class="field-error"' in html and "255" in html
    html = text(b.post("/pickers/contact/new?field=contact_ids", {"q": "   "}))
    assert 'class="field-error"' in html
    assert counts(db) == before


def test_length_limits_agree_between_schema_database_and_forms(app, db, org, client, auth):
    for entity, fields in SCHEMAS.items():
        table = ENTITY_MODELS[entity].__table__ if entity in ENTITY_MODELS else None
        for f in fields:
            if table is not None and f.kind == "string" and f.name in table.c:
                assert table.c[f.name].type.length == f.max_length, (entity, f.name)
    b = Browser(client, auth).login(org.m1)
    for plural, entity in (("companies", "company"), ("deals", "deal"), ("leads", "lead"),
                           ("contacts", "contact")):
        html = text(b.get(f"/{plural}/new"))
        for f in SCHEMAS[entity]:
            if f.kind == "string" and not f.readonly:
                assert re.search(rf'name="{f.name}" id="f-{f.name}" value="[^"]*" '
                                 rf'maxlength="{f.max_length}"', html), (entity, f.name)
        assert "Не более 255 знаков" in html or entity == "contact"
    assert "Не более 100 знаков" in text(b.get("/contacts/new"))


def test_a_400_character_company_title_is_refused_with_a_field_error(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post("/companies/new", {"title": "Щ" * 400, "responsible_id": org.m1.id})
    assert r.status_code == 422
    assert "255" in (field_error(text(r), "title") or "")
    company = make_company(db, org.m1, title="Короткое")
    db.commit()
    before = counts(db)
    r = b.post(f"/companies/{company.id}/edit", {"title": "Щ" * 256,
                                                 "responsible_id": org.m1.id})
    assert r.status_code == 422 and "255" in (field_error(text(r), "title") or "")
    assert counts(db) == before
    api = client.post("/api/v1/companies", json={"title": "Щ" * 400},
                      headers={"X-CSRFToken": b.token()})
    assert api.status_code in (401, 403, 422)
