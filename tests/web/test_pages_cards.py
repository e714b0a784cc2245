"""Record cards: fields, links between records, comments, activities, history, conversion."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from crm_models.activity import Activity, Comment, OutboxEvent
from crm_models.entities import Contact, Deal, Lead
from tests.factories import make_company, make_contact, make_deal, make_lead

from .pages_support import Browser, counts, field_error, fresh, set_locale, text


def test_cards_render_every_field_in_both_languages(app, db, org, client, auth):
    vector = make_company(db, org.m1, title="Vector", industry="Manufacturing",
                          phones=[{"value": "+7 495 123-45-67", "value_type": "WORK"}])
    petrov = make_contact(db, org.m1, first_name="Petr", last_name="Petrov",
                          company_id=vector.id, emails=[{"value": "p@vector.example"}])
    deal = make_deal(db, org.m1, title="Machines", amount="2500000", stage="EXECUTING",
                     company_id=vector.id, contact_ids=[petrov.id], close_date="2030-05-01")
    lead = make_lead(db, org.m1, title="Request", source="WEB", status="IN_PROCESS")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/deals/{deal.id}"))
    for expected in ("Machines", "В работе", "2\xa0500\xa0000,00\xa0₽", "Vector", "Petr Petrov",
                     "Вероятность, %", "Дата завершения", "1 мая 2030", "История"):
        assert expected in html, expected
    html = text(b.get(f"/companies/{vector.id}"))
    assert "Сфера деятельности" in html and "Manufacturing" in html
    assert 'href="tel:+74951234567"' in html and "рабочий" in html
    assert f'href="/contacts/{petrov.id}"' in html and f'href="/deals/{deal.id}"' in html
    html = text(b.get(f"/contacts/{petrov.id}"))
    assert f'href="/companies/{vector.id}"' in html and f'href="/deals/{deal.id}"' in html
    assert "Источник" in text(b.get(f"/leads/{lead.id}"))
    set_locale(db, org.m1, "en")
    html = text(b.get(f"/deals/{deal.id}"))
    for expected in ("In progress", "Probability, %", "Close date", "May 1, 2030", "History"):
        assert expected in html, expected
    html = text(b.get(f"/leads/{lead.id}"))
    assert "Website" in html and "Convert" in html


def test_unknown_and_foreign_records_are_404(app, db, org, client, auth):
    b = Browser(client, auth).login(org.m1)
    assert b.get("/deals/999999").status_code == 404
    assert b.get("/widgets").status_code == 404
    r = b.get("/leads/999999")
    assert "Не найдено" in text(r)


def test_comments_are_added_and_a_blank_one_is_refused(app, db, org, client, auth):
    deal = make_deal(db, org.m1)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = b.post(f"/deals/{deal.id}/comments", {"text": "Called the client\nsecond line"})
    assert r.status_code == 302 and r.headers["Location"].endswith("#comments")
    html = text(b.get(f"/deals/{deal.id}"))
    assert "Called the client<br>second line" in html
    assert "оставил(а) комментарий" in html  # the history shows it too
    before = counts(db)
    r = b.post(f"/deals/{deal.id}/comments", {"text": "   "})
    assert r.status_code == 422 and field_error(text(r), "text") == "обязательное поле"
    assert counts(db) == before
    comment = fresh(db).scalars(select(Comment)).one()
    assert comment.author_id == org.m1.id
    events = [e.event_type for e in db.scalars(select(OutboxEvent))]
    assert "comment.added" in events


def test_activities_are_planned_in_the_users_time_zone_and_completed(app, db, org, client,
                                                                       auth):
    lead = make_lead(db, org.m1)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    r = b.post(f"/leads/{lead.id}/activities", {
        "type": "call", "subject": "Call back", "description": "about prices",
        "due_at": "2030-03-01T10:30", "responsible_id": org.m1.id})
    assert r.status_code == 302
    act = fresh(db).scalars(select(Activity)).one()
    # 10:30 in Moscow (UTC+3) is stored as 07:30 UTC
    assert act.due_at == dt.datetime(2030, 3, 1, 7, 30, tzinfo=dt.UTC)
    html = text(b.get(f"/leads/{lead.id}"))
    assert "Call back" in html and "01.03.2030, 10:30" in html and "Звонок" in html
    r = b.post(f"/activities/{act.id}/complete")
    assert r.status_code == 302 and fresh(db).get(Activity, act.id).done is True
    assert "выполнил(а) дело" in text(b.get(f"/leads/{lead.id}"))


def test_bad_activity_shows_errors_and_keeps_the_input(app, db, org, client, auth):
    lead = make_lead(db, org.m1)
    db.commit()
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post(f"/leads/{lead.id}/activities", {"type": "party", "subject": "",
                                                "description": "kept text", "due_at": "soon"})
    assert r.status_code == 422
    html = text(r)
    assert field_error(html, "subject") == "обязательное поле"
    assert field_error(html, "type").startswith("должно быть одним из")
    assert "kept text" in html
    r = b.post(f"/leads/{lead.id}/activities", {"type": "todo", "subject": "x",
                                                "due_at": "soon"})
    assert r.status_code == 422 and field_error(text(r), "due_at")
    assert counts(db) == before


def test_history_shows_field_diffs_with_names(app, db, org, client, auth):
    deal = make_deal(db, org.m1, title="Before", stage="NEW")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    b.post(f"/deals/{deal.id}/edit", {"title": "After", "pipeline_id": "0", "stage": "WON",
                                      "currency": "RUB", "responsible_id": org.m1.id,
                                      "opened": "on"})
    html = text(b.get(f"/deals/{deal.id}"))
    history = html.split('id="timeline"', 1)[1]
    assert "Manager One" in history and "изменил(а)" in history
    assert re.search(r"Название сделки</th><td class=\"old\">Before</td>.*?<td class=\"new\">"
                     r"After</td>", history, re.S)
    assert re.search(r"Стадия</th><td class=\"old\">Новая</td>.*?Сделка успешна", history, re.S)


def test_conversion_preview_then_convert_redirects_to_the_deal(app, db, org, client, auth):
    lead = make_lead(db, org.m1, title="Big order", first_name="Alexey", last_name="Smirnov",
                     company_title="Granit", amount="150000", source="WEB",
                     phones=[{"value": "+7 900 000-00-01"}])
    db.commit()
    b = Browser(client, auth).login(org.m1)
    assert f'href="/leads/{lead.id}/convert"' in text(b.get(f"/leads/{lead.id}"))
    before = counts(db)
    html = text(b.get(f"/leads/{lead.id}/convert"))
    assert "Alexey Smirnov" in html and "Granit" in html and "150\xa0000,00\xa0₽" in html
    assert counts(db) == before  # the preview writes nothing
    r = b.post(f"/leads/{lead.id}/convert", {"title": "Big order deal", "stage": "PREPARATION"})
    assert r.status_code == 302
    deal_id = int(re.search(r"/deals/(\d+)$", r.headers["Location"]).group(1))
    deal = fresh(db).get(Deal, deal_id)
    assert deal.title == "Big order deal" and deal.stage.code == "PREPARATION"
    assert deal.company.title == "Granit" and [c.last_name for c in deal.contacts] == ["Smirnov"]
    lead = db.get(Lead, lead.id)
    assert lead.status == "CONVERTED" and lead.deal_id == deal.id
    html = text(b.get(r.headers["Location"]))
    assert "Лид сконвертирован" in html and f'href="/leads/{lead.id}"' in html
    # converting twice is refused with a message, not an error page
    r = b.get(f"/leads/{lead.id}/convert")
    assert r.status_code == 422 and "этот лид уже сконвертирован" in text(r)
    assert b.post(f"/leads/{lead.id}/convert", {}).status_code == 422
    assert fresh(db).scalar(select(Contact.id).where(Contact.last_name == "Smirnov")) is not None


def test_conversion_and_delete_pages_in_english(app, db, org, client, auth):
    lead = make_lead(db, org.m1, title="Deal me", first_name="Ann")
    db.commit()
    set_locale(db, org.m1, "en")
    b = Browser(client, auth).login(org.m1)
    html = text(b.get(f"/leads/{lead.id}/convert"))
    assert "Convert the lead “Deal me”" in html and "Nothing is written until you confirm" in html
    html = text(b.get(f"/leads/{lead.id}/delete"))
    assert "Delete lead “Deal me”?" in html


def test_conversion_with_a_bad_stage_writes_nothing(app, db, org, client, auth):
    lead = make_lead(db, org.m1, title="L", first_name="A")
    db.commit()
    b = Browser(client, auth).login(org.m1)
    before = counts(db)
    r = b.post(f"/leads/{lead.id}/convert", {"stage": "NO_SUCH"})
    assert r.status_code == 422 and field_error(text(r), "stage")
    assert counts(db) == before
    assert fresh(db).get(Lead, lead.id).status == "NEW"
