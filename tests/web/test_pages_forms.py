"""Create, edit and delete forms: field errors next to fields, input kept, nothing half written."""
from __future__ import annotations

import re

from sqlalchemy import select

from crm_models.activity import OutboxEvent
from crm_models.entities import Company, Contact, Deal, Lead
from tests.factories import make_company, make_contact, make_deal, make_lead

from .pages_support import Browser, counts, field_error, fresh, input_value, set_locale, text


def new_id(response, plural: str) -> int:
    assert response.status_code == 302, text(response)[:2000]
    m = re.search(rf"/{plural}/(\d+)$", response.headers["Location"])
    assert m, response.headers["Location"]
    return int(m.group(1))


def test_forms_render_in_both_languages(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals/new"))
    assert "Новая сделка" in html and "Название сделки" in html and "Основная воронка" in html
    assert "Подготовка документов" in html
    set_locale(db, org.m1, "en")
    html = text(b.get("/deals/new"))
    assert "New deal" in html and "Deal name" in html and "Preparing documents" in html


def test_create_lead_with_phones_and_emails(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    r = b.post("/leads/new", {
        "title": "Website request", "first_name": "Alexey", "last_name": "Smirnov",
        "status": "NEW", "source": "WEB", "amount": "150 000,50", "currency": "RUB",
        "phones-value": ["+7 900 000-00-01", "+7 495 123-45-67", ""],
        "phones-type": ["MOBILE", "WORK", "MOBILE"],
        "emails-value": ["a@example.com"], "emails-type": ["HOME"],
        "responsible_id": str(org.m1.id), "opened": "on", "comments": "first line"})
    lead = fresh(db).get(Lead, new_id(r, "leads"))
    assert lead.title == "Website request" and str(lead.amount) == "150000.50"
    assert lead.phones == [{"value": "+7 900 000-00-01", "value_type": "MOBILE"},
                           {"value": "+7 495 123-45-67", "value_type": "WORK"}]
    assert lead.emails == [{"value": "a@example.com", "value_type": "HOME"}]
    html = text(b.get(r.headers["Location"]))
    assert "+7 495 123-45-67" in html and 'href="mailto:a@example.com"' in html
    assert "150\xa0000,50\xa0₽" in html


def test_bad_input_shows_errors_next_to_fields_and_keeps_input(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post("/leads/new", {"title": "", "first_name": "Kept", "amount": "12abc",
                              "phones-value": ["not a phone!"], "phones-type": ["WORK"],
                              "responsible_id": str(org.m1.id)})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "title") == "обязательное поле"
    assert field_error(html, "amount").startswith("должно быть числом")
    assert "Исправьте отмеченные поля" in html
    assert input_value(html, "first_name") == "Kept"
    assert input_value(html, "amount") == "12abc"
    assert 'value="not a phone!"' in html
    assert counts(db) == before
    set_locale(db, org.m1, "en")
    html = text(b.post("/leads/new", {"title": "", "responsible_id": str(org.m1.id)}))
    assert field_error(html, "title") == "is required"


def test_service_rules_show_as_field_errors(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post("/contacts/new", {"position": "CEO", "responsible_id": str(org.m1.id)})
    assert r.status_code == 422
    assert field_error(text(r), "last_name") == "у контакта должно быть имя или фамилия"
    r = b.post("/deals/new", {"title": "X", "probability": "140", "close_date": "31.12.2024",
                              "responsible_id": str(org.m1.id)})
    html = text(r)
    assert r.status_code == 422
    assert field_error(html, "probability") == "должно быть не больше 100"
    assert field_error(html, "close_date") == "должно быть датой"
    r = b.post("/deals/new", {"title": "X", "contact_ids": "999999",
                              "responsible_id": str(org.m1.id)})
    assert r.status_code == 422 and field_error(text(r), "contact_ids")
    assert counts(db) == before


def test_creating_for_someone_else_without_the_right_is_refused_in_the_form(app, db, org,
                                                                              client, auth):
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post("/companies/new", {"title": "Not mine", "responsible_id": str(org.m2.id)})
    assert r.status_code == 403
    assert "Недостаточно прав" in text(r) and input_value(text(r), "title") == "Not mine"
    assert counts(db) == before


def test_create_deal_with_company_contacts_and_stage(app, db, org, client, auth):
    vector = make_company(db, org.m1, title="Vector")
    c1 = make_contact(db, org.m1, last_name="Petrov")
    c2 = make_contact(db, org.m1, last_name="Ivanov")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get("/deals/new"))
    assert "Vector" in html and "Petrov" in html
    # Searchable pickers, not a Ctrl-multiselect: contacts are ticked, the company is a radio.
    assert f'type="checkbox" name="contact_ids" value="{c1.id}"' in html
    assert f'type="radio" name="company_id" value="{vector.id}"' in html
    assert "Ctrl" not in html and 'class="picker-search"' in html
    r = b.post("/deals/new", {"title": "Machines", "pipeline_id": "0", "stage": "EXECUTING",
                              "amount": "2500000", "currency": "RUB", "company_id": vector.id,
                              "contact_ids": [c1.id, c2.id], "responsible_id": org.m1.id,
                              "opened": "on"})
    deal = fresh(db).get(Deal, new_id(r, "deals"))
    assert deal.stage.code == "EXECUTING" and deal.company_id == vector.id
    assert sorted(c.id for c in deal.contacts) == sorted([c1.id, c2.id])
    assert deal.opened is True
    events = [e.event_type for e in db.scalars(select(OutboxEvent)
                                               .where(OutboxEvent.entity_id == deal.id))]
    assert "deal.created" in events


def test_edit_updates_only_what_changed_and_keeps_links(app, db, org, client, auth):
    vector = make_company(db, org.m1, title="Vector")
    c1 = make_contact(db, org.m1, last_name="Petrov")
    deal = make_deal(db, org.m1, title="Old", amount="10", company_id=vector.id,
                     contact_ids=[c1.id], stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/deals/{deal.id}/edit"))
    assert input_value(html, "title") == "Old"
    assert f'type="checkbox" name="contact_ids" value="{c1.id}" checked> Petrov' in html
    form = {"title": "New title", "pipeline_id": "0", "stage": "NEW", "amount": "10.00",
            "currency": "RUB", "company_id": vector.id, "contact_ids": [c1.id],
            "responsible_id": org.m1.id, "opened": "on", "comments": ""}
    r = b.post(f"/deals/{deal.id}/edit", form)
    assert r.status_code == 302
    deal = fresh(db).get(Deal, deal.id)
    assert deal.title == "New title" and [c.id for c in deal.contacts] == [c1.id]
    updated = [e for e in db.scalars(select(OutboxEvent).where(
        OutboxEvent.event_type == "deal.updated"))]
    assert len(updated) == 1 and set(updated[0].payload["changed"]) == {"title"}
    # unticking "opened" and clearing the company are real changes too
    r = b.post(f"/deals/{deal.id}/edit", {**form, "opened": "", "company_id": ""})
    deal = fresh(db).get(Deal, deal.id)
    assert deal.opened is False and deal.company_id is None


def test_edit_with_errors_writes_nothing(app, db, org, client, auth):
    lead = make_lead(db, org.m1, title="Stable", amount="5")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post(f"/leads/{lead.id}/edit", {"title": "Changed", "amount": "-3",
                                          "status": "NEW", "responsible_id": org.m1.id})
    assert r.status_code == 422
    assert field_error(text(r), "amount") == "должно быть неотрицательной суммой меньше 10^15"
    assert input_value(text(r), "title") == "Changed"
    assert counts(db) == before
    assert fresh(db).get(Lead, lead.id).title == "Stable"


def test_converted_lead_can_still_be_edited(app, db, org, client, auth):
    from crm_models.services import convert_lead
    from tests.factories import SYSTEM

    lead = make_lead(db, org.m1, title="Conv", first_name="Ann")
    convert_lead(db, SYSTEM, lead.id)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/leads/{lead.id}/edit"))
    assert '<option value="CONVERTED" selected>' in html
    r = b.post(f"/leads/{lead.id}/edit", {"title": "Conv 2", "status": "CONVERTED",
                                          "currency": "RUB", "responsible_id": org.m1.id})
    assert r.status_code == 302
    lead = fresh(db).get(Lead, lead.id)
    assert lead.title == "Conv 2" and lead.status == "CONVERTED"


def test_delete_asks_first_then_deletes(app, db, org, client, auth):
    company_id = make_company(db, org.m1, title="Doomed").id
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = b.get(f"/companies/{company_id}/delete")
    assert r.status_code == 200 and "Удалить компанию «Doomed»?" in text(r)
    assert fresh(db).get(Company, company_id) is not None
    r = b.post(f"/companies/{company_id}/delete")
    assert r.status_code == 302 and r.headers["Location"].endswith("/companies")
    assert fresh(db).get(Company, company_id) is None
    assert "«Doomed» удалено" in text(b.get("/companies"))
    assert b.get(f"/companies/{company_id}").status_code == 404


def test_contact_form_prefills_the_company_from_the_query(app, db, org, client, auth):
    vector = make_company(db, org.m1, title="Vector")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/contacts/new?company_id={vector.id}"))
    assert f'type="radio" name="company_id" value="{vector.id}" checked> Vector' in html
    r = b.post("/contacts/new", {"first_name": "Petr", "company_id": vector.id,
                                 "responsible_id": org.m1.id})
    contact = fresh(db).get(Contact, new_id(r, "contacts"))
    assert contact.company_id == vector.id
